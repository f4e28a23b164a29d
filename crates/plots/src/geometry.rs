//! The geometry-of-memorisation charts (`mnemo_measures::geometry::GeometryResult`):
//! training points and samples coloured by a chosen LID (2-D, or a projection of 3-D
//! data onto two axes) with the memorised classes marked; the FLIPD curve of chosen
//! points over `t0`; and each region's estimator means against its true dimension.
//! LIDs are clipped to `[0, D]` for colour (the values themselves are not clamped).

use plotters::coord::Shift;
use plotters::prelude::*;

use mnemo_measures::geometry::{GeometryResult, MemClass, TrainPoint};

use crate::{ChartResult, PALETTE};

/// Which LID colours the scatter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LidColour {
    /// The true LID.
    True,
    /// lPCA (FO).
    Lpca,
    /// MLE.
    Mle,
    /// FLIPD.
    Flipd,
    /// The normal bundle.
    NormalBundle,
}

impl LidColour {
    /// Name in captions.
    pub fn label(self) -> &'static str {
        match self {
            LidColour::True => "true LID",
            LidColour::Lpca => "lPCA",
            LidColour::Mle => "MLE",
            LidColour::Flipd => "FLIPD",
            LidColour::NormalBundle => "normal bundle",
        }
    }

    fn of(self, p: &TrainPoint) -> Option<f64> {
        match self {
            LidColour::True => Some(p.true_lid),
            LidColour::Lpca => p.lpca,
            LidColour::Mle => p.mle,
            LidColour::Flipd => Some(p.flipd),
            LidColour::NormalBundle => p.normal_bundle,
        }
    }
}

/// A colour for `v` on `[0, max]` (dark blue to yellow, viridis-like); grey if undefined.
pub fn lid_colour(v: Option<f64>, max: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return RGBColor(170, 170, 170);
    };
    let t = (v / max.max(1e-9)).clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.06).max(0.05);
    (lo - pad, hi + pad)
}

/// Training points (filled circles coloured by `colour`, clipped to `[0, D]`) and
/// samples (small crosses, red when flagged as a copy), on axes `axes` (`(0, 1)` for
/// 2-D data; any pair for 3-D); OD-Mem points ringed in orange, DD-Mem in black.
pub fn scatter_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &GeometryResult,
    colour: LidColour,
    axes: (usize, usize),
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let (a, b) = axes;
    let d = result.dim;
    let (a, b) = (a.min(d - 1), b.min(d - 1));
    let xs = result
        .train
        .iter()
        .map(|p| p.x[a])
        .chain(result.samples.iter().map(|s| s.x[a]));
    let ys = result
        .train
        .iter()
        .map(|p| p.x[b])
        .chain(result.samples.iter().map(|s| s.x[b]));
    let (x0, x1) = range(xs);
    let (y0, y1) = range(ys);
    let [od, dd, _, _] = result.class_counts();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Training points by {} (0 to {d}), samples as crosses; OD-Mem {od}, DD-Mem {dd}, copies {}",
                colour.label(),
                result.copies()
            ),
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(44)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(format!("x{a}"))
        .y_desc(format!("x{b}"))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let grey = RGBColor(120, 120, 120);
    let red = RGBColor(200, 30, 30);
    chart.draw_series(result.samples.iter().map(|s| {
        let c = if s.copy_of.is_some() { red } else { grey };
        Cross::new((s.x[a], s.x[b]), 3, c.mix(0.7))
    }))?;
    chart
        .draw_series(result.train.iter().map(|p| {
            Circle::new(
                (p.x[a], p.x[b]),
                3,
                lid_colour(colour.of(p), d as f64).filled(),
            )
        }))?
        .label(format!("training point ({})", colour.label()))
        .legend(|(x, y)| Circle::new((x + 8, y), 3, lid_colour(Some(1.0), 2.0).filled()));
    let orange = PALETTE[1];
    chart
        .draw_series(
            result
                .train
                .iter()
                .filter(|p| p.class == MemClass::OdMem)
                .map(|p| Circle::new((p.x[a], p.x[b]), 7, orange.stroke_width(2))),
        )?
        .label("OD-Mem")
        .legend(move |(x, y)| Circle::new((x + 8, y), 5, orange.stroke_width(2)));
    chart
        .draw_series(
            result
                .train
                .iter()
                .filter(|p| p.class == MemClass::DdMem)
                .map(|p| Circle::new((p.x[a], p.x[b]), 9, BLACK.stroke_width(1))),
        )?
        .label("DD-Mem")
        .legend(|(x, y)| Circle::new((x + 8, y), 5, BLACK.stroke_width(1)));
    chart
        .draw_series(std::iter::once(Cross::new((x0 - 1.0, y0 - 1.0), 3, grey)))?
        .label("sample (red: copy)")
        .legend(move |(x, y)| Cross::new((x + 8, y), 3, grey));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// The FLIPD curve of the training points `points` (indices): FLIPD against `log10 t0`,
/// one line per point, its true LID dashed in the same colour. A knee at the true LID
/// is what the reference shows.
pub fn flipd_curve_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &GeometryResult,
    points: &[usize],
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let lx: Vec<f64> = result.curve_t0.iter().map(|t| t.log10()).collect();
    let (xl, xh) = (
        lx.first().copied().unwrap_or(-4.0),
        lx.last()
            .copied()
            .unwrap_or(0.0)
            .max(lx.first().copied().unwrap_or(-4.0) + 1e-3),
    );
    let d = result.dim as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("FLIPD curve over t0 (dashed: true LID)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(xl..xh, -0.5..d + 0.5)?;
    chart
        .configure_mesh()
        .x_desc("log10 t0")
        .y_desc("FLIPD (clipped to [-0.5, D + 0.5])")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    for (c, &i) in points.iter().enumerate() {
        let (Some(curve), Some(p)) = (result.curve.get(i), result.train.get(i)) else {
            continue;
        };
        let colour = PALETTE[c % PALETTE.len()];
        let line: Vec<(f64, f64)> = lx
            .iter()
            .zip(curve)
            .map(|(&x, &v)| (x, v.clamp(-0.5, d + 0.5)))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
            .label(format!(
                "point {i} ({}, true {})",
                p.region.key(),
                p.true_lid
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        chart.draw_series(line.iter().map(|&q| Circle::new(q, 2, colour.filled())))?;
        chart.draw_series(DashedLineSeries::new(
            vec![(xl, p.true_lid), (xh, p.true_lid)],
            5,
            4,
            colour.stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Per region: grouped bars of the true LID and the means of lPCA, MLE, FLIPD and the
/// normal bundle (a missing bar: undefined everywhere in the region), value on top.
pub fn estimator_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &GeometryResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let names = ["true", "lPCA", "MLE", "FLIPD", "normal bundle"];
    let n = result.regions.len().max(1);
    let top = result
        .regions
        .iter()
        .flat_map(|r| [Some(r.true_lid), r.lpca, r.mle, r.flipd, r.normal_bundle])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(result.dim as f64, f64::max);
    let low = result
        .regions
        .iter()
        .filter_map(|r| r.flipd)
        .fold(0.0f64, f64::min);
    let labels: Vec<String> = result
        .regions
        .iter()
        .map(|r| format!("{} (n={})", r.region.key(), r.n))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Mean LID per region against the true dimension",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0.0f64..n as f64, (low - 0.2)..(top + 0.6))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * n + 1)
        .x_label_formatter(&|v| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 1e-6 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("LID")
        .draw()?;
    let w = 0.8 / names.len() as f64;
    for (k, name) in names.iter().enumerate() {
        let colour = if k == 0 {
            RGBColor(90, 90, 90)
        } else {
            PALETTE[(k - 1) % PALETTE.len()]
        };
        let bars: Vec<(f64, f64)> = result
            .regions
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let v = [Some(r.true_lid), r.lpca, r.mle, r.flipd, r.normal_bundle][k]?;
                Some((i as f64 + 0.1 + k as f64 * w, v))
            })
            .collect();
        chart
            .draw_series(
                bars.iter()
                    .map(|&(x, v)| Rectangle::new([(x, 0.0), (x + w * 0.9, v)], colour.filled())),
            )?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], colour.filled()));
        chart.draw_series(bars.iter().map(|&(x, v)| {
            Text::new(
                format!("{v:.2}"),
                (x, v.max(0.0) + 0.12),
                ("sans-serif", 10).into_font(),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}
