//! The training-data influence charts: how far the methods agree (a heat map of their
//! mean Spearman rank correlations, `mnemo_measures::influence::InfluenceResult`) and
//! case deletion (mean loss rise of the test texts against the number of removed top
//! proponents per method, random removal with the range of its draws,
//! `mnemo_measures::influence::DeletionResult`).

use plotters::coord::Shift;
use plotters::prelude::*;

use mnemo_measures::influence::{DeletionResult, InfluenceResult, Removal, agreement};

use crate::{ChartResult, PALETTE};

/// Colour of a correlation in [-1, 1]: blue for positive, orange for negative, white at 0.
fn heat(v: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let (r, g, b) = if t >= 0.0 {
        (0.0, 114.0, 178.0)
    } else {
        (213.0, 94.0, 0.0)
    };
    let a = t.abs();
    let mix = |c: f64| (255.0 + (c - 255.0) * a).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

/// Heat map of the methods' agreement: cell (i, j) is the mean over test texts of the
/// Spearman rank correlation between methods i and j's scores of the training texts,
/// with its value written in the cell (`n/a` where no test text defines it).
pub fn agreement_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &InfluenceResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let a = agreement(result);
    let n = a.methods.len().max(1);
    let labels: Vec<&str> = a.methods.iter().map(|m| m.label()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Method agreement: mean Spearman rank correlation over {} test texts",
                result.tests.len()
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0f64..n as f64, 0.0f64..n as f64)?;
    let at = |v: f64| {
        let i = v.floor() as usize;
        if (v - i as f64 - 0.5).abs() < 1e-6 {
            labels.get(i).map(|s| s.to_string()).unwrap_or_default()
        } else {
            String::new()
        }
    };
    let at_y = |v: f64| {
        let i = v.floor() as usize;
        if (v - i as f64 - 0.5).abs() < 1e-6 && i < n {
            labels
                .get(n - 1 - i)
                .map(|s| s.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(2 * n + 1)
        .y_labels(2 * n + 1)
        .x_label_formatter(&|v| at(*v))
        .y_label_formatter(&|v| at_y(*v))
        .draw()?;
    for (i, row) in a.matrix.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            // Row i is drawn from the top.
            let (x0, y0) = (j as f64, (n - 1 - i) as f64);
            let fill = v.map_or(RGBColor(235, 235, 235), heat);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                fill.filled(),
            )))?;
            let text = v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}"));
            let colour = if v.is_some_and(|v| v.abs() > 0.6) {
                WHITE
            } else {
                BLACK
            };
            chart.draw_series(std::iter::once(Text::new(
                text,
                (x0 + 0.42, y0 + 0.5),
                ("sans-serif", 15).into_font().color(&colour),
            )))?;
        }
    }
    Ok(())
}

/// Case deletion: the mean loss rise of the test texts (nats/token) against `k`, the
/// number of training texts removed, one line per method; random removal as a dashed
/// line with the range of its per-draw means shaded.
pub fn deletion_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &DeletionResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let s = &result.summary;
    let kmax = s.iter().map(|x| x.k).max().unwrap_or(1).max(1) as f64;
    let ys = s
        .iter()
        .flat_map(|x| [x.mean_rise, x.draw_min, x.draw_max])
        .filter(|v| v.is_finite());
    let (lo, hi) = ys.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let tests = result
        .rows
        .iter()
        .map(|r| r.test)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Case deletion: loss rise after removing the top-k proponents ({tests} test texts)"
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0f64..kmax * 1.05, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("k (training texts removed)")
        .y_desc("mean loss rise of the test text (nats/token)")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let mut removals: Vec<Removal> = Vec::new();
    for x in s {
        if !removals.contains(&x.removal) {
            removals.push(x.removal);
        }
    }
    for (c, removal) in removals.iter().enumerate() {
        let pts: Vec<&mnemo_measures::influence::DeletionSummary> =
            s.iter().filter(|x| x.removal == *removal).collect();
        let line: Vec<(f64, f64)> = pts.iter().map(|x| (x.k as f64, x.mean_rise)).collect();
        if *removal == Removal::Random {
            let grey = RGBColor(110, 110, 110);
            let mut band: Vec<(f64, f64)> = pts.iter().map(|x| (x.k as f64, x.draw_max)).collect();
            band.extend(pts.iter().rev().map(|x| (x.k as f64, x.draw_min)));
            chart.draw_series(std::iter::once(Polygon::new(band, grey.mix(0.2).filled())))?;
            for x in &pts {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x.k as f64, x.draw_min), (x.k as f64, x.draw_max)],
                    grey.stroke_width(1),
                )))?;
            }
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, grey.stroke_width(2)))?
                .label("random (range of the draws' means)")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
        } else {
            let colour = PALETTE[c % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
                .label(removal.label())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}
