//! Every Mnemo chart, drawn with plotters on any `DrawingBackend`: a canvas in the
//! browser, SVG natively. One function per chart; each takes a plain result struct.

#![warn(missing_docs)]

pub mod counterfactual;
pub mod did;
pub mod exposure;
pub mod extraction;
pub mod geometry;
pub mod influence;
pub mod mitigation;
pub mod softprompt;

use plotters::coord::Shift;
use plotters::prelude::*;

/// The error a chart returns: the backend's own drawing error.
pub type ChartResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Palette shared by all charts (colour-blind safe, Okabe-Ito).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// One training run's loss per step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossSeries {
    /// Legend label.
    pub label: String,
    /// `(step, loss)` points, in step order.
    pub points: Vec<(usize, f32)>,
}

/// Exponential moving average (weight `alpha` on the past), bias-corrected so the first
/// points are not pulled towards zero.
pub fn ema(points: &[(usize, f32)], alpha: f64) -> Vec<(usize, f64)> {
    let mut avg = 0.0;
    let mut weight = 0.0;
    points
        .iter()
        .map(|&(s, y)| {
            avg = alpha * avg + (1.0 - alpha) * y as f64;
            weight = alpha * weight + (1.0 - alpha);
            (s, avg / weight)
        })
        .collect()
}

/// The loss curve: raw per-step loss (thin) and its moving average (bold) for each
/// series, loss in nats per token against the step.
pub fn loss_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[LossSeries],
) -> ChartResult<DB> {
    titled_loss_chart(area, "Training loss", series)
}

/// [`loss_chart`] with its own caption. Series `i` takes colour `PALETTE[i]`; an empty
/// series draws nothing and keeps its colour slot.
pub fn titled_loss_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    series: &[LossSeries],
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let max_step = series
        .iter()
        .flat_map(|s| s.points.last().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(1);
    let finite = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1 as f64))
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (0.0f64.min(lo), hi.max(lo + 1e-3) * 1.05)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0usize..max_step, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (nats/token)")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart.draw_series(LineSeries::new(
            s.points.iter().map(|&(x, y)| (x, y as f64)),
            colour.mix(0.3).stroke_width(1),
        ))?;
        let smooth =
            chart.draw_series(LineSeries::new(ema(&s.points, 0.9), colour.stroke_width(2)))?;
        if !s.label.is_empty() {
            smooth.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
        }
    }
    if series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    area.present()?;
    Ok(())
}

/// The loss chart as an SVG document.
pub fn loss_svg(series: &[LossSeries], size: (u32, u32)) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        // Drawing into a string has no I/O to fail; on a plotting error the document is
        // still closed when the backend drops, so the result stays valid SVG.
        let _ = loss_chart(&root, series);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_is_bias_corrected() {
        let e = ema(&[(1, 2.0), (2, 2.0), (3, 2.0)], 0.9);
        for (_, v) in e {
            assert!((v - 2.0).abs() < 1e-12);
        }
        let e = ema(&[(1, 0.0), (2, 10.0)], 0.5);
        assert!((e[1].1 - 10.0 * 0.5 / 0.75).abs() < 1e-12);
    }

    #[test]
    fn svg_has_the_curve_and_labels() {
        let s = LossSeries {
            label: "run".into(),
            points: (1..=50).map(|i| (i, 3.0 / i as f32)).collect(),
        };
        let svg = loss_svg(&[s], (640, 400));
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Training loss"));
        assert!(svg.contains("polyline"), "the series is drawn");
        assert!(
            svg.lines().any(|l| l.trim() == "run"),
            "the legend names the series"
        );
    }

    #[test]
    fn empty_series_still_draws_axes() {
        let svg = loss_svg(&[], (320, 200));
        assert!(svg.contains("Training loss"));
    }
}
