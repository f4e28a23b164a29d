//! The CSV tables of a soft-prompt result.

use super::*;

fn rate_text(v: f64) -> String {
    v.to_string()
}

/// The rates table as CSV, header `method,exact_rate,fractional_rate,relative_gain`, one
/// row per method (`none`, `constant`, `dynamic`); `relative_gain` is the relative gain
/// of the *exact* rate over no prompt (the paper's headline figure), `undefined` for no
/// prompt itself and when no prompt's exact rate is 0.
pub fn softprompt_csv(result: &SoftPromptResult) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["method", "exact_rate", "fractional_rate", "relative_gain"])?;
    for m in &result.methods {
        w.write_record([
            m.method.label().to_string(),
            rate_text(m.rates.exact_rate),
            rate_text(m.rates.fractional_rate),
            m.exact_gain
                .map_or_else(|| "undefined".to_string(), |g| g.to_string()),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Per-pair outcomes as CSV, header `pair,method,exact,fraction`: `pair` is the id of the
/// training instance the test pair was cut from; one row per test pair and method.
pub fn pairs_csv(result: &SoftPromptResult) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["pair", "method", "exact", "fraction"])?;
    for m in &result.methods {
        for r in &m.rows {
            w.write_record([
                r.instance.to_string(),
                m.method.label().to_string(),
                r.exact.to_string(),
                r.fraction.to_string(),
            ])?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Prompt-training losses as CSV, header `method,step,loss` (constant, then dynamic).
pub fn prompt_loss_csv(result: &SoftPromptResult) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["method", "step", "loss"])?;
    for m in &result.methods {
        for (step, loss) in &m.losses {
            w.write_record([
                m.method.label().to_string(),
                step.to_string(),
                loss.to_string(),
            ])?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
