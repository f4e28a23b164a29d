//! Mitigation charts (`mnemo_measures::unlearn::MethodResult`): the trade-off between
//! memorisation removed and accuracy kept, one point per method and setting with the
//! untouched model marked, and a bar chart per measure.

use plotters::coord::Shift;
use plotters::prelude::*;

use mnemo_measures::unlearn::{Kind, Method, MethodResult, reference_result};

use crate::{ChartResult, PALETTE};

/// A reference point drawn beside Mnemo's (e.g. the paper's result for a method).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePoint {
    /// The method (the square takes its colour in the chart).
    pub method: Method,
    /// Memorised share (0-1).
    pub memorised: f64,
    /// Accuracy (0-1).
    pub accuracy: f64,
}

/// The reference's result (METHODS.md section 5) for every method in `results`, once
/// each, as points for [`tradeoff_chart`] (the reference's column for `layers` blocks).
pub fn reference_points(
    results: &[MethodResult],
    backdoor: bool,
    layers: usize,
) -> Vec<ReferencePoint> {
    let mut seen: Vec<Method> = Vec::new();
    for r in results {
        if !seen.contains(&r.method) {
            seen.push(r.method);
        }
    }
    seen.into_iter()
        .filter_map(|m| {
            let r = reference_result(m, backdoor, layers)?;
            Some(ReferencePoint {
                method: m,
                memorised: r.memorised,
                accuracy: r.accuracy,
            })
        })
        .collect()
}

/// Memorised share (x) against test accuracy (y), in percent: one point per method and
/// setting (circles for neuron-level, triangles for weight-level methods, hollow circles
/// for fine-tunes, hollow triangles for regularisers, a colour per method), the untouched
/// model as a black cross, and `reference` points as hollow squares in their method's
/// colour (one legend entry for all, no text beside them: the best points of both sit in
/// the upper left corner, where labels would cover Mnemo's). The best corner is the
/// upper left.
pub fn tradeoff_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    results: &[MethodResult],
    reference: &[ReferencePoint],
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let pct = |v: f64| if v.is_finite() { 100.0 * v } else { 0.0 };
    let before = results
        .first()
        .map(|r| (pct(r.memorised_before), pct(r.accuracy_before)));
    let ys = results
        .iter()
        .map(|r| pct(r.accuracy_after))
        .chain(before.map(|b| b.1))
        .chain(reference.iter().map(|p| pct(p.accuracy)));
    let lo = ys.fold(100.0f64, f64::min);
    let y0 = (lo - 5.0).clamp(0.0, 95.0).floor();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Mitigation: memorisation removed vs accuracy kept",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(-2.0f64..102.0, y0..100.5f64)?;
    chart
        .configure_mesh()
        .x_desc("memorised after (%)")
        .y_desc("test accuracy after (%)")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let mut methods: Vec<&str> = Vec::new();
    for r in results {
        if !methods.contains(&r.method.name()) {
            methods.push(r.method.name());
        }
    }
    let colour_of =
        |i: usize| PALETTE[i % PALETTE.len()].mix(if i < PALETTE.len() { 1.0 } else { 0.6 });
    for (i, name) in methods.iter().enumerate() {
        let colour = colour_of(i);
        let pts: Vec<(f64, f64, Kind)> = results
            .iter()
            .filter(|r| r.method.name() == *name)
            .map(|r| {
                (
                    pct(r.memorised_after),
                    pct(r.accuracy_after),
                    r.method.kind(),
                )
            })
            .collect();
        let kind = pts.first().map_or(Kind::Neuron, |p| p.2);
        let drawn =
            chart.draw_series(pts.iter().map(|&(x, y, k)| -> DynElement<DB, (f64, f64)> {
                match k {
                    Kind::Neuron => Circle::new((x, y), 5, colour.filled()).into_dyn(),
                    Kind::Weight => TriangleMarker::new((x, y), 6, colour.filled()).into_dyn(),
                    Kind::FineTune => Circle::new((x, y), 5, colour.stroke_width(2)).into_dyn(),
                    Kind::Regulariser => {
                        TriangleMarker::new((x, y), 6, colour.stroke_width(2)).into_dyn()
                    }
                }
            }))?;
        drawn
            .label(*name)
            .legend(move |(x, y)| -> DynElement<DB, (i32, i32)> {
                match kind {
                    Kind::Neuron => Circle::new((x + 6, y), 5, colour.filled()).into_dyn(),
                    Kind::Weight => TriangleMarker::new((x + 6, y), 6, colour.filled()).into_dyn(),
                    Kind::FineTune => Circle::new((x + 6, y), 5, colour.stroke_width(2)).into_dyn(),
                    Kind::Regulariser => {
                        TriangleMarker::new((x + 6, y), 6, colour.stroke_width(2)).into_dyn()
                    }
                }
            });
    }
    if let Some((x, y)) = before {
        chart
            .draw_series(std::iter::once(Cross::new(
                (x, y),
                7,
                BLACK.stroke_width(2),
            )))?
            .label("untouched model")
            .legend(|(x, y)| Cross::new((x + 6, y), 5, BLACK.stroke_width(2)));
    }
    let square = |(x, y): (f64, f64), colour: RGBAColor| {
        EmptyElement::at((x, y)) + Rectangle::new([(-5, -5), (5, 5)], colour.stroke_width(2))
    };
    let drawn = chart.draw_series(reference.iter().map(|p| {
        let i = methods
            .iter()
            .position(|n| *n == p.method.name())
            .unwrap_or(methods.len());
        square((pct(p.memorised), pct(p.accuracy)), colour_of(i))
    }))?;
    if !reference.is_empty() {
        drawn
            .label("reference (Sakarvadia et al.)")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x + 1, y - 5), (x + 11, y + 5)],
                    BLACK.mix(0.6).stroke_width(2),
                )
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    area.present()?;
    Ok(())
}

/// Which measure a bar chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Memorised share after (before as a line).
    Memorised,
    /// Test accuracy after (before as a line).
    Accuracy,
    /// Test perplexity after.
    Perplexity,
    /// Seconds per method.
    Seconds,
}

impl Measure {
    /// Every measure.
    pub const ALL: [Measure; 4] = [
        Measure::Memorised,
        Measure::Accuracy,
        Measure::Perplexity,
        Measure::Seconds,
    ];

    /// A file-name stem.
    pub fn stem(self) -> &'static str {
        match self {
            Measure::Memorised => "memorised",
            Measure::Accuracy => "accuracy",
            Measure::Perplexity => "perplexity",
            Measure::Seconds => "seconds",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Measure::Memorised => "memorised after (%)",
            Measure::Accuracy => "test accuracy after (%)",
            Measure::Perplexity => "test perplexity after",
            Measure::Seconds => "seconds per method",
        }
    }

    fn value(self, r: &MethodResult) -> f64 {
        let v = match self {
            Measure::Memorised => 100.0 * r.memorised_after,
            Measure::Accuracy => 100.0 * r.accuracy_after,
            Measure::Perplexity => r.perplexity_after,
            Measure::Seconds => r.seconds,
        };
        if v.is_finite() { v } else { 0.0 }
    }

    fn before(self, r: &MethodResult) -> Option<f64> {
        match self {
            Measure::Memorised => Some(100.0 * r.memorised_before),
            Measure::Accuracy => Some(100.0 * r.accuracy_before),
            _ => None,
        }
    }
}

/// One bar per method and setting for `measure`; for memorisation and accuracy the
/// untouched model's value is a dashed line.
pub fn measure_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    results: &[MethodResult],
    measure: Measure,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let n = results.len().max(1);
    let top = results
        .iter()
        .map(|r| measure.value(r))
        .chain(results.first().and_then(|r| measure.before(r)))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let labels: Vec<String> = results
        .iter()
        .map(|r| format!("{} {}", r.method.name(), r.settings.ratio))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Mitigation: {}", measure.label()),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0f64..n as f64, 0.0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| {
            let i = v.floor() as usize;
            labels.get(i).cloned().unwrap_or_default()
        })
        .x_label_style(
            ("sans-serif", 10)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .y_desc(measure.label())
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    chart.draw_series(results.iter().enumerate().map(|(i, r)| {
        let colour = match r.method.kind() {
            Kind::Neuron => PALETTE[0],
            Kind::Weight => PALETTE[1],
            Kind::FineTune => PALETTE[2],
            Kind::Regulariser => PALETTE[3],
        };
        Rectangle::new(
            [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, measure.value(r))],
            colour.mix(0.85).filled(),
        )
    }))?;
    if let Some(b) = results.first().and_then(|r| measure.before(r)) {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, b), (n as f64, b)],
                6,
                4,
                BLACK.mix(0.7).stroke_width(1),
            ))?
            .label("untouched model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLACK.mix(0.7)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did::svg_of;
    use mnemo_measures::unlearn::{Method, MethodSettings};

    fn result(method: Method, mem: f64, acc: f64) -> MethodResult {
        MethodResult {
            method,
            settings: MethodSettings::defaults(method),
            memorised_before: 0.5,
            memorised_after: mem,
            clean_after: Some(0.2),
            accuracy_before: 0.97,
            accuracy_after: acc,
            perplexity_after: 1.3,
            seconds: 2.0,
            sequences: vec![],
        }
    }

    #[test]
    fn tradeoff_marks_the_untouched_model_and_every_method() {
        let rs = vec![
            result(Method::BalancedSubnet, 0.0, 0.96),
            result(Method::ZeroOut, 0.4, 0.9),
        ];
        let refs = vec![ReferencePoint {
            method: Method::BalancedSubnet,
            memorised: 0.0,
            accuracy: 0.964,
        }];
        let svg = svg_of((800, 480), |a| tradeoff_chart(a, &rs, &refs));
        for s in [
            "untouched model",
            "balanced-subnet",
            "zero-out",
            "reference (Sakarvadia et al.)",
        ] {
            assert!(svg.contains(s), "{s}");
        }
        assert!(!svg.contains("NaN"));
        for m in Measure::ALL {
            let svg = svg_of((800, 480), |a| measure_chart(a, &rs, m));
            assert!(svg.contains("<rect"), "{m:?}");
        }
        // No results still draws.
        let svg = svg_of((400, 300), |a| tradeoff_chart(a, &[], &[]));
        assert!(svg.starts_with("<svg"));
    }
}
