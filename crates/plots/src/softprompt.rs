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
    let losses: Vec<(Method, &[(usize, f32)])> = result
        .methods
        .iter()
        .map(|m| (m.method, m.losses.as_slice()))
        .collect();
    prompt_losses_chart(area, &losses)
}

/// [`prompt_loss_chart`] from the losses alone, `(method, [(step, loss)])`, e.g. while
/// the prompts are still training.
pub fn prompt_losses_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    losses: &[(Method, &[(usize, f32)])],
) -> ChartResult<DB> {
    let mut series = vec![LossSeries::default(); Method::ALL.len()];
    for (method, points) in losses {
        if let Some(s) = series.get_mut(*method as usize)
            && !points.is_empty()
        {
            *s = LossSeries {
                label: format!("{} prompt", method.label()),
                points: points.to_vec(),
            };
        }
    }
    titled_loss_chart(
        area,
        "Soft-prompt training loss (suffix tokens of the training pairs)",
        &series,
    )
}
