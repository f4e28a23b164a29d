//! The soft-prompt charts (`mnemo_measures::softprompt::SoftPromptResult`): extraction
//! rates of no prompt, the constant prompt and the dynamic prompt side by side on the
//! held-out test pairs, and both prompts' training loss by step.

use plotters::coord::Shift;
use plotters::prelude::*;

use mnemo_measures::softprompt::{Method, MethodResult, SoftPromptResult};

use crate::{ChartResult, LossSeries, PALETTE, titled_loss_chart};

/// The legend text of one method: its name, rates in percent and relative gains over no
/// prompt (`undefined` when no prompt's rate is 0).
pub fn method_label(m: &MethodResult) -> String {
    let gain = |g: Option<f64>| {
        g.map_or_else(
            || "undefined".to_string(),
            |g| format!("{:+.0}%", 100.0 * g),
        )
    };
    let base = format!(
        "{}: exact {:.1}%, fractional {:.1}%",
        m.method.label(),
        100.0 * m.rates.exact_rate,
        100.0 * m.rates.fractional_rate
    );
    if m.method == Method::None {
        base
    } else {
        format!(
            "{base} (gain: exact {}, fractional {})",
            gain(m.exact_gain),
            gain(m.fractional_gain)
        )
    }
}

/// Grouped bars: for each method (no prompt, constant, dynamic), its exact and its
/// fractional extraction rate on the test pairs, with the value above each bar; the
/// legend names the two rates and the caption the lengths used.
pub fn rates_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &SoftPromptResult,
) -> ChartResult<DB> {
    area.fill(&WHITE)?;
    let n = result.methods.len().max(1);
    let l = &result.lengths;
    let caption = format!(
        "Extraction with soft prompts ({} test pairs, k = {}, s = {}, L = {}{})",
        result.test_pairs,
        l.prefix,
        l.suffix,
        l.prompt_len,
        if l.clamped {
            ", clamped to the context"
        } else {
            ""
        }
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0f64..n as f64, 0.0f64..1.25)?;
    let names: Vec<String> = result
        .methods
        .iter()
        .map(|m| match m.method {
            Method::None => "no prompt".to_string(),
            other => format!("{} prompt", other.label()),
        })
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|v| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 1e-6 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_labels(6)
        .y_label_formatter(&|v| {
            if *v <= 1.0 + 1e-9 {
                format!("{v:.1}")
            } else {
                String::new()
            }
        })
        .y_desc("share of test pairs (exact) / of suffix tokens (fractional)")
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let rates = [
        ("exact extraction rate", 0usize),
        ("fractional extraction rate", 1usize),
    ];
    for (label, side) in rates {
        let colour = PALETTE[side];
        let value = |m: &MethodResult| {
            let v = if side == 0 {
                m.rates.exact_rate
            } else {
                m.rates.fractional_rate
            };
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let drawn = chart.draw_series(result.methods.iter().enumerate().map(|(i, m)| {
            let x0 = i as f64 + 0.12 + side as f64 * 0.38;
            Rectangle::new(
                [(x0, 0.0), (x0 + 0.36, value(m))],
                colour.mix(0.85).filled(),
            )
        }))?;
        drawn.label(label).legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.85).filled())
        });
        chart.draw_series(result.methods.iter().enumerate().map(|(i, m)| {
            let x = i as f64 + 0.14 + side as f64 * 0.38;
            Text::new(
                format!("{:.1}%", 100.0 * value(m)),
                (x, value(m) + 0.05),
                ("sans-serif", 13).into_font(),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    // The per-method figures, gains included, as a text block at the top left.
    for (i, m) in result.methods.iter().enumerate() {
        area.draw(&Text::new(
            method_label(m),
            (70, 40 + 16 * i as i32),
            ("sans-serif", 12).into_font(),
        ))?;
    }
    area.present()?;
    Ok(())
}

/// Both prompts' training loss (suffix cross-entropy, nats/token) by step: the raw loss
/// (thin) and its moving average (bold), in each method's colour (the loss chart with
/// one series per method; "no prompt" trains nothing and draws nothing).
pub fn prompt_loss_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    result: &SoftPromptResult,
) -> ChartResult<DB> {
    let mut series = vec![LossSeries::default(); 3];
    for m in &result.methods {
        if let Some(s) = series.get_mut(m.method as usize)
            && !m.losses.is_empty()
        {
            *s = LossSeries {
                label: format!("{} prompt", m.method.label()),
                points: m.losses.clone(),
            };
        }
    }
    titled_loss_chart(
        area,
        "Soft-prompt training loss (suffix tokens of the training pairs)",
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did::svg_of;
    use mnemo_measures::extraction::{ExtractionRates, ExtractionRow};
    use mnemo_measures::softprompt::{FittedLengths, SoftPromptSpec, relative_gain};

    fn method(method: Method, generated: [Vec<u32>; 2], steps: usize) -> MethodResult {
        let rows: Vec<ExtractionRow> = generated
            .into_iter()
            .enumerate()
            .map(|(i, g)| ExtractionRow::score(i as u32, 4, vec![1, 2, 3, 4], g))
            .collect();
        MethodResult {
            method,
            rates: ExtractionRates::of(&rows),
            exact_gain: None,
            fractional_gain: None,
            steps,
            losses: (1..=steps).map(|s| (s, 3.0 / s as f32)).collect(),
            rows,
        }
    }

    fn result() -> SoftPromptResult {
        let none = method(Method::None, [vec![1, 2, 9, 9], vec![9, 9, 9, 9]], 0);
        let mut constant = method(Method::Constant, [vec![1, 2, 3, 4], vec![9, 9, 9, 9]], 20);
        let mut dynamic = method(Method::Dynamic, [vec![1, 2, 3, 4], vec![1, 2, 3, 9]], 20);
        for m in [&mut constant, &mut dynamic] {
            m.exact_gain = relative_gain(m.rates.exact_rate, none.rates.exact_rate);
            m.fractional_gain = relative_gain(m.rates.fractional_rate, none.rates.fractional_rate);
        }
        SoftPromptResult {
            settings: SoftPromptSpec::default(),
            lengths: FittedLengths {
                prompt_len: 20,
                prefix: 21,
                suffix: 22,
                clamped: true,
            },
            pair_lengths: vec![],
            train_pairs: 2,
            test_pairs: 2,
            scaled: 0,
            skipped: 0,
            duplicates: 0,
            methods: vec![none, constant, dynamic],
        }
    }

    #[test]
    fn labels_give_rates_and_gains_with_undefined_spelled_out() {
        let r = result();
        assert_eq!(
            method_label(&r.methods[0]),
            "none: exact 0.0%, fractional 25.0%"
        );
        // Constant: 1 of 2 exact (base 0: undefined), 4 of 8 tokens (base 2 of 8: +100%).
        assert_eq!(
            method_label(&r.methods[1]),
            "constant: exact 50.0%, fractional 50.0% (gain: exact undefined, fractional +100%)"
        );
        assert_eq!(
            method_label(&r.methods[2]),
            "dynamic: exact 50.0%, fractional 87.5% (gain: exact undefined, fractional +250%)"
        );
    }

    #[test]
    fn svgs_draw_both_charts_without_nan() {
        let r = result();
        let svg = svg_of((800, 480), |a| rates_chart(a, &r));
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("k = 21, s = 22, L = 20, clamped to the context"));
        assert!(svg.contains("fractional extraction rate") && svg.contains("87.5%"));
        assert!(svg.contains("dynamic prompt") && svg.contains("no prompt"));
        assert!(svg.matches("<rect").count() >= 6, "six bars");
        let svg = svg_of((800, 480), |a| prompt_loss_chart(a, &r));
        assert!(svg.contains("Soft-prompt training loss"));
        assert!(svg.contains("constant prompt") && svg.contains("dynamic prompt"));
        assert!(svg.contains("polyline"));
        // Nothing trained, nothing measured: still a chart, no NaN.
        let mut empty = r.clone();
        for m in &mut empty.methods {
            m.losses.clear();
            m.rows.clear();
            m.rates = ExtractionRates::of(&[]);
        }
        for svg in [
            svg_of((400, 300), |a| rates_chart(a, &empty)),
            svg_of((400, 300), |a| prompt_loss_chart(a, &empty)),
        ] {
            assert!(svg.starts_with("<svg") && !svg.contains("NaN"));
        }
    }
}
