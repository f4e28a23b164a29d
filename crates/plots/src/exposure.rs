//! The canary-exposure charts (`mnemo_measures::exposure::ExposureResult`): each
//! canary's exposure against how often it was trained on, with the largest possible
//! exposure marked; and where the secrets lie among every candidate's log-perplexity.

use plotters::coord::Shift;
use plotters::prelude::*;

use mnemo_measures::exposure::{ExposureMethod, ExposureResult};

use crate::{ChartResult, PALETTE};

/// Exposure (bits) of each canary against its repetitions (log2 axis; 0 repetitions,
/// a control, drawn at the left edge), the line `log2 |R|` marked, each point labelled
/// with its rank; with `after`, the exposures measured after an unlearning method (its
/// label) as hollow points beside them.
pub fn exposure_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &ExposureResult,
    after: Option<(&str, &ExposureResult)>,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    // x = log2(repetitions), with 0 repetitions at -1.
    let x_of = |r: u32| if r == 0 { -1.0 } else { (r as f64).log2() };
    let xmax = result
        .canaries
        .iter()
        .map(|c| x_of(c.repetitions))
        .fold(1.0f64, f64::max)
        + 0.5;
    let ymax = result.max_exposure * 1.12 + 0.5;
    let caption = format!(
        "Canary exposure ({}, |R| = {}): {}",
        result.format,
        space_label(result.space),
        match result.method {
            ExposureMethod::Extrapolated => "extrapolated from a skew-normal fit",
            _ => "exact ranks",
        }
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(-1.5f64..xmax, 0.0f64..ymax)?;
    chart
        .configure_mesh()
        .x_labels(12)
        .x_label_formatter(&|v| {
            let r = v.round();
            if (v - r).abs() > 1e-6 || r < -1.0 {
                String::new()
            } else if r < 0.0 {
                "0".into()
            } else {
                format!("{}", 2f64.powf(r) as u64)
            }
        })
        .x_desc("times the canary is in the training data")
        .y_desc("exposure (bits)")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let grey = BLACK.mix(0.45);
    chart
        .draw_series(LineSeries::new(
            [(-1.5, result.max_exposure), (xmax, result.max_exposure)],
            grey.stroke_width(1),
        ))?
        .label(format!(
            "largest exposure log2 |R| = {:.2} bits",
            result.max_exposure
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], grey));
    let colour = PALETTE[0];
    let mut points: Vec<(f64, f64)> = result
        .canaries
        .iter()
        .map(|c| (x_of(c.repetitions), c.exposure))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart.draw_series(LineSeries::new(points.clone(), colour.mix(0.5)))?;
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 5, colour.filled())))?
        .label("a canary (label: its rank)")
        .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
    if let Some((label, after)) = after {
        let colour = PALETTE[1];
        let mut points: Vec<(f64, f64)> = after
            .canaries
            .iter()
            .map(|c| (x_of(c.repetitions), c.exposure))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(points.clone(), colour.mix(0.5)))?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 5, colour.stroke_width(2))),
            )?
            .label(format!("after {label}"))
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.stroke_width(2)));
    }
    chart.draw_series(result.canaries.iter().map(|c| {
        Text::new(
            format!("rank {}", short_rank(c.rank)),
            (x_of(c.repetitions) + 0.08, c.exposure + 0.04 * ymax),
            ("sans-serif", 12),
        )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Histogram of the scored candidates' log-perplexities (bits; lower is more likely),
/// the fitted skew-normal's density over it when the ranks are extrapolated, and a
/// vertical line at each secret, labelled with its repetitions.
pub fn perplexity_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &ExposureResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let h = &result.histogram;
    let n_bins = h.counts.len().max(1);
    let x0 = h.lo;
    let x1 = h.lo + h.width * n_bins as f64;
    let total: u64 = h.counts.iter().sum::<u64>().max(1);
    let shares: Vec<f64> = h.counts.iter().map(|&c| c as f64 / total as f64).collect();
    let top = shares.iter().copied().fold(0.0f64, f64::max).max(1e-3) * 1.3;
    let pad = (x1 - x0) * 0.03 + 1e-6;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Log-perplexity of {} scored candidates, the secrets marked",
                result.scored
            ),
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("log-perplexity of the candidate (bits; left: the model finds it likely)")
        .y_desc("share of candidates")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let bar = PALETTE[5];
    chart
        .draw_series(shares.iter().enumerate().map(|(i, &s)| {
            let a = x0 + h.width * i as f64;
            Rectangle::new([(a, 0.0), (a + h.width, s)], bar.mix(0.7).filled())
        }))?
        .label("candidates")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], bar.mix(0.7).filled()));
    if let Some(fit) = &result.fit {
        let orange = PALETTE[1];
        let curve: Vec<(f64, f64)> = (0..=200)
            .map(|i| {
                let x = x0 + (x1 - x0) * i as f64 / 200.0;
                (x, fit.ln_pdf(x).exp() * h.width)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(curve, orange.stroke_width(2)))?
            .label("skew-normal fit")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], orange.stroke_width(2)));
    }
    let red = RGBColor(200, 30, 30);
    for c in &result.canaries {
        chart.draw_series(LineSeries::new(
            [(c.log_perplexity, 0.0), (c.log_perplexity, top * 0.82)],
            red.stroke_width(2),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("x{}", c.repetitions),
            (
                c.log_perplexity,
                top * 0.84 + 0.04 * top * (c.canary % 3) as f64,
            ),
            ("sans-serif", 12).into_font().color(&red),
        )))?;
    }
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label("a secret (xN: seen N times)")
        .legend(move |(x, y)| {
            PathElement::new([(x + 6, y - 6), (x + 6, y + 6)], red.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// `|R|` as written in captions: whole below a million, else in powers of ten.
pub fn space_label(space: f64) -> String {
    if space < 1e6 {
        format!("{space:.0}")
    } else {
        format!("{:.2e}", space)
    }
}

/// A rank as a label: whole numbers as they are, estimates to 2 significant figures.
fn short_rank(rank: f64) -> String {
    if rank.fract() == 0.0 && rank < 1e6 {
        format!("{rank:.0}")
    } else {
        format!("{rank:.2e}")
    }
}
