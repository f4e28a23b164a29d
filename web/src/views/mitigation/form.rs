//! The view's settings form: a row per method (ticked, ratio, steps or epochs, rate,
//! BalancedSubnet's `a`), the ratio sweep and the retain set, each field checked, and the
//! spec they make.

use super::*;

/// One method's row of the settings.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MethodRow {
    pub(super) method: Method,
    pub(super) ticked: bool,
    pub(super) ratio: String,
    pub(super) epochs: String,
    pub(super) lr: String,
    /// BalancedSubnet's `a` (the other methods ignore it).
    pub(super) alpha: String,
}

/// One method row's field checks.
#[derive(Debug, Clone)]
pub(super) struct RowChecks {
    ratio: Check,
    epochs: Check,
    lr: Check,
    alpha: Check,
}

impl RowChecks {
    /// The first failing field's message.
    pub(super) fn first_error(&self) -> Option<String> {
        [&self.ratio, &self.epochs, &self.lr, &self.alpha]
            .into_iter()
            .find_map(|c| c.clone().err())
    }
}

/// Whether the optimising method `m` has a steps (or epochs) and a rate setting.
pub(super) fn has_epochs(m: Method) -> bool {
    matches!(
        m,
        Method::FinetuneClean
            | Method::FinetuneExtra
            | Method::FinetuneBoth
            | Method::Slimming
            | Method::HardConcrete
            | Method::Subnet
            | Method::BalancedSubnet
    )
}

/// Whether `m` zeroes a share of units (has a ratio; the regularisers and the
/// fine-tunes do not).
pub(super) fn has_ratio(m: Method) -> bool {
    !matches!(m.kind(), Kind::FineTune | Kind::Regulariser)
}

pub(super) fn default_rows() -> Vec<MethodRow> {
    Method::ALL
        .iter()
        .map(|&m| {
            let d = MethodSettings::defaults(m);
            MethodRow {
                method: m,
                ticked: QUICK.contains(&m),
                ratio: d.ratio.to_string(),
                epochs: d.epochs.to_string(),
                lr: d.lr.to_string(),
                alpha: d.alpha.to_string(),
            }
        })
        .collect()
}

impl MitigationPanel {
    /// Each field checked: per method, then sweep, then retain.
    pub(super) fn checks(&self) -> (Vec<RowChecks>, Check, Check) {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let ratio = match r.ratio.trim().parse::<f64>() {
                    _ if !has_ratio(r.method) => Ok(()),
                    Ok(v) if v > 0.0 && v < 1.0 => Ok(()),
                    _ => Err("a share above 0 and below 1".to_string()),
                };
                let epochs = match r.epochs.trim().parse::<usize>() {
                    Ok(v) if (1..=10_000).contains(&v) => Ok(()),
                    _ => Err("a whole number from 1 to 10,000".to_string()),
                };
                let lr = match r.lr.trim().parse::<f64>() {
                    Ok(v) if v > 0.0 && v <= 10.0 => Ok(()),
                    _ => Err("a learning rate above 0, at most 10".to_string()),
                };
                let alpha = match r.alpha.trim().parse::<f64>() {
                    _ if r.method != Method::BalancedSubnet => Ok(()),
                    Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
                    _ => Err("a weight from 0 to 1".to_string()),
                };
                if has_epochs(r.method) {
                    RowChecks {
                        ratio,
                        epochs,
                        lr,
                        alpha,
                    }
                } else {
                    RowChecks {
                        ratio,
                        epochs: Ok(()),
                        lr: Ok(()),
                        alpha,
                    }
                }
            })
            .collect();
        let sweep = self.sweep_ratios().map(|_| ());
        let retain = match self.retain.trim().parse::<usize>() {
            Ok(v) if (1..=10_000).contains(&v) => Ok(()),
            _ => Err("a whole number from 1 to 10,000".to_string()),
        };
        (rows, sweep, retain)
    }

    /// The sweep's ratios (empty: each method at its own ratio).
    pub(super) fn sweep_ratios(&self) -> Result<Vec<f64>, String> {
        let parsed: Result<Vec<f64>, _> = self
            .sweep
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse::<f64>)
            .collect();
        match parsed {
            Ok(v) if v.len() <= 8 && v.iter().all(|&r| r > 0.0 && r < 1.0) => Ok(v),
            _ => Err("up to eight shares above 0 and below 1, separated by commas".into()),
        }
    }

    /// The ticked methods with their settings.
    pub(super) fn methods(&self) -> Result<Vec<MethodSettings>, String> {
        let (rows, sweep, retain) = self.checks();
        for (c, r) in rows.iter().zip(&self.rows) {
            if let Some(e) = c.first_error().filter(|_| r.ticked) {
                return Err(format!("{}: {e}", r.method.name()));
            }
        }
        sweep?;
        retain?;
        let sweep = self.sweep_ratios()?;
        let mut out = Vec::new();
        for r in self.rows.iter().filter(|r| r.ticked) {
            let mut s = MethodSettings::defaults(r.method);
            s.ratio = r.ratio.trim().parse().unwrap_or(s.ratio);
            if has_epochs(r.method) {
                s.epochs = r.epochs.trim().parse().unwrap_or(s.epochs);
                s.lr = r.lr.trim().parse().unwrap_or(s.lr);
            }
            if r.method == Method::BalancedSubnet {
                s.alpha = r.alpha.trim().parse().unwrap_or(s.alpha);
            }
            if sweep.is_empty() || !has_ratio(r.method) {
                out.push(s);
            } else {
                out.extend(
                    sweep
                        .iter()
                        .map(|&ratio| MethodSettings { ratio, ..s.clone() }),
                );
            }
        }
        if out.is_empty() {
            return Err("tick at least one method".into());
        }
        Ok(out)
    }

    /// The experiment to run: the model's spec with this view's mitigation section.
    pub(super) fn spec(&self) -> Result<ExperimentSpec, String> {
        let (mut spec, model) = if self.model == LAST {
            let trained = self
                .hub
                .state
                .trained
                .as_deref()
                .ok_or("train a TinyMem model first, or pick a built-in one")?;
            if !is_tinymem(&trained.1) {
                return Err("the last trained model is not a TinyMem model with test sets: train one from `mnemo spec --tinymem-noise` (or pick a built-in model)".into());
            }
            (trained.1.clone(), None)
        } else {
            let b = builtin::get(&self.model).map_err(|e| e.to_string())?;
            if !b.shipped {
                return Err(builtin::BuiltinError::NotShipped(b.name).to_string());
            }
            (
                b.spec().map_err(|e| e.to_string())?,
                Some(b.name.to_string()),
            )
        };
        spec.mitigation = Some(MitigationSpec {
            model,
            methods: self.methods()?,
            retain: self.retain.trim().parse().unwrap_or(DEFAULT_RETAIN),
        });
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// Set the fields from a spec's section (a link, "Run again").
    pub(super) fn set_fields(&mut self, s: &MitigationSpec) {
        self.model = s.model.clone().unwrap_or_else(|| LAST.to_string());
        for r in &mut self.rows {
            let mine: Vec<&MethodSettings> =
                s.methods.iter().filter(|m| m.method == r.method).collect();
            r.ticked = !mine.is_empty();
            if let Some(first) = mine.first() {
                r.ratio = first.ratio.to_string();
                r.epochs = first.epochs.to_string();
                r.lr = first.lr.to_string();
                r.alpha = first.alpha.to_string();
            }
        }
        self.sweep.clear();
        self.retain = s.retain.to_string();
    }

    /// Tick only the two subnets, at the picked built-in model's headline setting
    /// ([`MethodSettings::headline`]), with its retain set; no sweep.
    pub(super) fn headline(&mut self) {
        let Ok(b) = builtin::get(&self.model) else {
            return;
        };
        for r in &mut self.rows {
            r.ticked = matches!(r.method, Method::Subnet | Method::BalancedSubnet);
            if r.ticked {
                let h = MethodSettings::headline(r.method, b.headline_ratio);
                r.ratio = h.ratio.to_string();
                r.epochs = h.epochs.to_string();
                r.lr = h.lr.to_string();
                r.alpha = h.alpha.to_string();
            }
        }
        self.sweep.clear();
        self.retain = HEADLINE_RETAIN.to_string();
        self.error = None;
    }
}
