//! Memorisation profiles by difference-in-differences (`METHODS.md`, section 1).
//!
//! Lesci et al. (ACL 2024) estimate the causal effect of training on an instance on the
//! model's outcome for that same instance with the group-time average treatment effects
//! of Callaway & Sant'Anna (2021). This module is that estimator, written to give the same
//! numbers as the `differences` Python package's `ATTgt` with `est_method="reg"`,
//! `control_group="never_treated"` and `base_period="varying"` (checked to 1e-9 by the
//! crate's tests against fixtures made by `tests/reference/did_reference.py`).
//!
//! # Data: the panel
//!
//! A [`Panel`] holds `N` instances, each with a cohort (`Some(g)`) or never trained
//! (`None`), and an `N x C` matrix of outcomes over checkpoints `0..C`. Cohort and
//! checkpoint share units: cohort `g` means the instance was first trained on between
//! checkpoint `g - 1` and checkpoint `g`, so checkpoint `g - 1` is the cohort's base
//! period. A valid panel is balanced (every instance has every checkpoint `0..C`), has at
//! least two checkpoints, at least two never-trained instances, at least one cohort, every
//! cohort with at least two instances, and every cohort `g` within `1..C` (a cohort `0`
//! has no pre-period; a cohort `>= C` is never observed trained). [`Panel::from_csv`]
//! reads the `instance,cohort,checkpoint,outcome` format; every malformed input gets a
//! [`PanelError`] that names its line (or row, or cohort, or instance) and the problem.
//!
//! # The estimator
//!
//! Modelling choices, all as in `METHODS.md` and `differences`:
//! - Control group: the never-trained instances only (`G = inf`); no covariates.
//! - "Varying" base period: for cohort `g` and checkpoint `c >= g` the base is `b = g - 1`;
//!   for `c < g` (pre-treatment, placebo cells) it is `b = c - 1`. Cells with `c = 0` have
//!   no base and do not exist. So every cohort has exactly `C - 1` cells, `c = 1..C`.
//! - `ATT(g,c) = mean_{G=g}(Y_c - Y_b) - mean_{G=inf}(Y_c - Y_b)`, and
//!   `memorisation(g,c) = -ATT(g,c)` (in the outcome's units; positive = memorised when
//!   the outcome is a loss such as surprisal).
//! - Analytic standard error from the influence function. Written over the `n = n_g +
//!   n_inf` instances of the two groups, with within-sample shares `p_g = n_g / n`,
//!   `p_inf = n_inf / n`: `psi_i = 1{G=g}/p_g (dY_i - mean_g dY) - 1{G=inf}/p_inf (dY_i -
//!   mean_inf dY)` and `SE = sqrt(sum_i psi_i^2) / n`. (`differences` rescales the
//!   influence function to all `N` instances, `psi * N / n`, and divides by `N`; the
//!   result is the same number.) In closed form:
//!   `SE^2 = s2_g / n_g + s2_inf / n_inf`, with `s2` the variance of `dY` in each group
//!   computed with divisor `n_g` (resp. `n_inf`), not `n - 1`.
//! - Aggregations `theta = sum_k w_k ATT_k` (see [`Aggregate`]) with the influence
//!   function `psi_theta = sum_k w_k psi_k + sum_k ATT_k omega_k` of `METHODS.md`, where
//!   `omega` is the influence function of the estimated cohort-size weights, and
//!   `SE = sqrt(sum_i psi_theta,i^2) / N`. With the weights `w_k = n_{g_k} / M`,
//!   `M = sum_k n_{g_k}`, the `omega` term simplifies exactly to
//!   `sum_{k: g_k = G_i} (ATT_k - theta) / S` for instance `i` (`S = M / N`), which is
//!   what is computed.
//! - Simultaneous confidence bands by the multiplier bootstrap, as `did`/`differences`
//!   do. Each draw `d` draws one multiplier `u_{d,i}` per instance (Rademacher by
//!   default, or Mammen; ChaCha8 seeded by [`DidOptions::seed`]) and reuses it for every
//!   cell and aggregate, so the draws keep the cells' joint dependence. The bootstrap
//!   deviation of an estimate with influence function `psi` is
//!   `T*_d = (1/N) sum_i u_{d,i} psi_i` (`differences` reports `sqrt(N) T*`, the same up
//!   to the factor). Its bootstrap SE is the interquartile-range rule of `did` and
//!   `differences`: `boot_se = (Q_0.75(T*) - Q_0.25(T*)) / (z_0.75 - z_0.25)`, quantiles
//!   by the inverted empirical CDF (numpy `inverted_cdf`, R type 1). The simultaneous
//!   critical value of a family of estimates is the `1 - alpha` quantile (same rule) over
//!   draws of `max_k |T*_{d,k}| / boot_se_k`, and a band is `att +- critical * boot_se`.
//!   `significant` means the band excludes 0. Families: all cells (pre- and
//!   post-treatment together, as in `did`), the event-time aggregates, the per-cohort
//!   aggregates, the per-checkpoint aggregates, and the overall aggregate (a single
//!   estimate, so its band is pointwise).
//! - Instantaneous memorisation is the cell `c = g` of each cohort, residual memorisation
//!   the cell `c = C - 1` of each cohort; both keep the cells' simultaneous bands.
//! - The naive simple difference at `c >= g` is `mean_{G=g} Y_c - mean_{G=inf} Y_c`
//!   (memorisation: its negation), with SE `sqrt(s2_g/n_g + s2_inf/n_inf)` of the levels
//!   and a pointwise normal interval; it ignores the pre-period, so differences in level
//!   between trained and held-out instances are counted as memorisation.
//!
//! # Computation
//!
//! Outcomes are centred on their group's mean at every checkpoint (`Yc`). A cell's
//! influence function is non-zero only on its cohort and the never-trained group, so its
//! SE costs `O(n_g + n_inf)`. In the bootstrap, with `Z_h[d][t] = sum_{i in h} u_{d,i}
//! Yc_{i,t}` for each group `h`, a cell's draw is `T*_k = (Z_g[d][c] - Z_g[d][b]) / n_g -
//! (Z_inf[d][c] - Z_inf[d][b]) / n_inf`, and an aggregate's is `sum_k w_k T*_k + sum_k
//! U_{g_k}[d] (ATT_k - theta) / M` with `U_h[d] = sum_{i in h} u_{d,i}`: one pass over the
//! panel per draw (`O(N C)`), the rest `O(cells)` per draw. Cohorts are processed in
//! parallel and reduced in cohort order, so the numbers depend only on the panel and the
//! options, never on the number of threads. At the paper's size (16,300 instances, 143
//! cohorts, 144 checkpoints) ATT and SEs take well under a second and 1000 draws about
//! half a second on 2 cores.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod bootstrap;
mod panel;
mod quantile;
mod result;

pub use panel::*;
pub use quantile::normal_quantile;
pub use result::*;

/// The most bootstrap draws [`estimate`] accepts (memory grows with draws x checkpoints).
pub const MAX_DRAWS: usize = 20_000;

/// The most worker threads the bootstrap uses.
pub const MAX_THREADS: usize = 64;

/// Why [`estimate`] failed.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DidError {
    /// The panel is invalid.
    #[error(transparent)]
    Panel(#[from] PanelError),
    /// An option is out of range.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
}
// -------------------------------------------------------------------------------------
// the estimator
// -------------------------------------------------------------------------------------

/// The panel rearranged for estimation: instances grouped (cohorts in increasing order,
/// then the never-trained group last), outcomes centred on their group's mean at each
/// checkpoint.
struct Prepared {
    n: usize,
    c: usize,
    /// Distinct cohorts, increasing.
    cohorts: Vec<usize>,
    /// Group `h` (cohort index, or `cohorts.len()` for never trained) owns rows
    /// `starts[h]..starts[h + 1]` of `yc`.
    starts: Vec<usize>,
    /// Group means, `(groups) x C`.
    means: Vec<f64>,
    /// Centred outcomes, `N x C`, rows grouped.
    yc: Vec<f64>,
    /// Centred outcomes of the never-trained group, transposed: `C x n_inf`.
    ctrl_t: Vec<f64>,
}

impl Prepared {
    fn new(panel: &Panel) -> Prepared {
        let n = panel.instances.len();
        let c = panel.checkpoints;
        let mut cohorts: Vec<usize> = panel.cohorts.iter().flatten().copied().collect();
        cohorts.sort_unstable();
        cohorts.dedup();
        let groups = cohorts.len() + 1;
        let group_of = |g: Option<usize>| match g {
            Some(g) => cohorts.binary_search(&g).unwrap_or(0),
            None => cohorts.len(),
        };
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
        for (i, g) in panel.cohorts.iter().enumerate() {
            members[group_of(*g)].push(i);
        }
        let mut starts = Vec::with_capacity(groups + 1);
        let mut means = vec![0.0; groups * c];
        let mut yc = Vec::with_capacity(n * c);
        starts.push(0);
        for (h, list) in members.iter().enumerate() {
            let m = &mut means[h * c..(h + 1) * c];
            for &i in list {
                for (acc, y) in m.iter_mut().zip(&panel.outcomes[i * c..(i + 1) * c]) {
                    *acc += y;
                }
            }
            let inv = list.len() as f64;
            for v in m.iter_mut() {
                *v /= inv;
            }
            for &i in list {
                yc.extend(
                    panel.outcomes[i * c..(i + 1) * c]
                        .iter()
                        .zip(m.iter())
                        .map(|(y, mu)| y - mu),
                );
            }
            starts.push(yc.len() / c);
        }
        let n_inf = members[groups - 1].len();
        let s = starts[groups - 1];
        let mut ctrl_t = vec![0.0; c * n_inf];
        for j in 0..n_inf {
            for t in 0..c {
                ctrl_t[t * n_inf + j] = yc[(s + j) * c + t];
            }
        }
        Prepared {
            n,
            c,
            cohorts,
            starts,
            means,
            yc,
            ctrl_t,
        }
    }

    fn never(&self) -> usize {
        self.cohorts.len()
    }

    fn size(&self, h: usize) -> usize {
        self.starts[h + 1] - self.starts[h]
    }

    fn mean(&self, h: usize, t: usize) -> f64 {
        self.means[h * self.c + t]
    }

    fn n_inf(&self) -> usize {
        self.size(self.never())
    }

    fn ctrl(&self, t: usize) -> &[f64] {
        let m = self.n_inf();
        &self.ctrl_t[t * m..(t + 1) * m]
    }
}

/// A cell before its band: cohort index, checkpoint, base, ATT, analytic SE.
#[derive(Clone, Copy)]
struct CellCore {
    h: usize,
    c: usize,
    b: usize,
    att: f64,
    se: f64,
}

/// A family of aggregates (event, cohort, checkpoint, overall).
struct Family {
    specs: Vec<AggSpec>,
}

/// One aggregate: its cells (indices into the cell list), weights, and whether the
/// weights are estimated cohort shares (then the `omega` term enters).
struct AggSpec {
    key: i64,
    cells: Vec<usize>,
    weights: Vec<f64>,
    /// `(ATT_k - theta) / M` per cell when the weights are estimated, else 0.
    omega: Vec<f64>,
    att: f64,
    se: f64,
}

impl AggSpec {
    /// Cohort-size weights `n_{g_k} / M` with the `omega` term, or equal weights without.
    fn new(key: i64, cells: Vec<usize>, core: &[CellCore], prep: &Prepared, shares: bool) -> Self {
        let k = cells.len() as f64;
        let sizes: Vec<f64> = cells.iter().map(|&j| prep.size(core[j].h) as f64).collect();
        let m: f64 = sizes.iter().sum();
        let weights: Vec<f64> = if shares {
            sizes.iter().map(|s| s / m).collect()
        } else {
            vec![1.0 / k; cells.len()]
        };
        let att: f64 = cells
            .iter()
            .zip(&weights)
            .map(|(&j, w)| w * core[j].att)
            .sum();
        let omega = if shares {
            cells.iter().map(|&j| (core[j].att - att) / m).collect()
        } else {
            vec![0.0; cells.len()]
        };
        AggSpec {
            key,
            cells,
            weights,
            omega,
            att,
            se: 0.0,
        }
    }

    /// `SE = sqrt(sum_i phi_i^2)` with `phi_i = psi_theta,i / N`: for an instance of
    /// cohort `h`, `phi_i = sum_{k: g_k = h} [w_k (dY_ik - mean_k) / n_h + (ATT_k -
    /// theta) / M]`; for a never-trained one, `phi_i = -sum_k w_k (dY_ik - mean_inf,k) /
    /// n_inf`.
    fn compute_se(&mut self, core: &[CellCore], prep: &Prepared, scratch: &mut Scratch) {
        let c = prep.c;
        let mut ss = 0.0;
        // treated: runs of cells of the same cohort (cells are cohort-major)
        let mut k = 0;
        while k < self.cells.len() {
            let h = core[self.cells[k]].h;
            let mut end = k;
            while end < self.cells.len() && core[self.cells[end]].h == h {
                end += 1;
            }
            let nh = prep.size(h);
            let buf = &mut scratch.treated;
            buf.clear();
            buf.resize(nh, 0.0);
            let rows = &prep.yc[prep.starts[h] * c..prep.starts[h + 1] * c];
            for j in k..end {
                let cell = core[self.cells[j]];
                let w = self.weights[j] / nh as f64;
                let om = self.omega[j];
                for (v, row) in buf.iter_mut().zip(rows.chunks_exact(c)) {
                    *v += w * (row[cell.c] - row[cell.b]) + om;
                }
            }
            ss += buf.iter().map(|v| v * v).sum::<f64>();
            k = end;
        }
        // never trained: phi = -(sum_t a_t Yc_t) / n_inf with a_t = sum_k w_k([t=c_k]-[t=b_k])
        let a = &mut scratch.coef;
        a.clear();
        a.resize(c, 0.0);
        for (j, &cell) in self.cells.iter().enumerate() {
            a[core[cell].c] += self.weights[j];
            a[core[cell].b] -= self.weights[j];
        }
        let v = &mut scratch.control;
        v.clear();
        v.resize(prep.n_inf(), 0.0);
        for (t, &at) in a.iter().enumerate() {
            if at != 0.0 {
                for (x, y) in v.iter_mut().zip(prep.ctrl(t)) {
                    *x += at * y;
                }
            }
        }
        let ni = prep.n_inf() as f64;
        ss += v.iter().map(|x| x * x).sum::<f64>() / (ni * ni);
        self.se = ss.sqrt();
    }
}

#[derive(Default)]
struct Scratch {
    treated: Vec<f64>,
    coef: Vec<f64>,
    control: Vec<f64>,
}

/// Estimates `ATT(g, c)`, its aggregations and bands (see the module docs for every
/// formula). Validates the panel and the options first; never panics on user input.
pub fn estimate(panel: &Panel, options: &DidOptions) -> Result<DidResult, DidError> {
    panel.validate()?;
    if !(options.alpha.is_finite() && options.alpha > 0.0 && options.alpha < 1.0) {
        return Err(DidError::InvalidOption {
            option: "alpha",
            reason: format!("must be strictly between 0 and 1, got {}", options.alpha),
        });
    }
    if options.draws > MAX_DRAWS {
        return Err(DidError::InvalidOption {
            option: "draws",
            reason: format!("at most {MAX_DRAWS}, got {}", options.draws),
        });
    }
    let prep = Prepared::new(panel);
    let c = prep.c;
    let ng = prep.cohorts.len();
    let never = prep.never();
    let n_inf = prep.n_inf();

    // ---------------- cells: ATT and analytic SE ----------------
    // control sums of squares for the pre-period pairs (t, t-1), shared by all cohorts
    let ctrl_ss = |t: usize, b: usize| -> f64 {
        prep.ctrl(t)
            .iter()
            .zip(prep.ctrl(b))
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
    };
    let pre_ss: Vec<f64> = (0..c)
        .map(|t| if t == 0 { 0.0 } else { ctrl_ss(t, t - 1) })
        .collect();
    let mut core: Vec<CellCore> = Vec::with_capacity(ng * (c - 1));
    for (h, &g) in prep.cohorts.iter().enumerate() {
        let nh = prep.size(h) as f64;
        let rows = &prep.yc[prep.starts[h] * c..prep.starts[h + 1] * c];
        for t in 1..c {
            let b = if t >= g { g - 1 } else { t - 1 };
            let att =
                (prep.mean(h, t) - prep.mean(h, b)) - (prep.mean(never, t) - prep.mean(never, b));
            let ss_t: f64 = rows
                .chunks_exact(c)
                .map(|r| (r[t] - r[b]) * (r[t] - r[b]))
                .sum();
            let ss_c = if b + 1 == t { pre_ss[t] } else { ctrl_ss(t, b) };
            let se = (ss_t / (nh * nh) + ss_c / (n_inf as f64 * n_inf as f64)).sqrt();
            core.push(CellCore {
                h,
                c: t,
                b,
                att,
                se,
            });
        }
    }
    let cell_index = |h: usize, t: usize| h * (c - 1) + (t - 1);

    // ---------------- aggregations ----------------
    let min_e = 1 - *prep.cohorts.last().unwrap_or(&1) as i64;
    let max_e = (c - 1) as i64 - *prep.cohorts.first().unwrap_or(&1) as i64;
    let mut event_specs = Vec::new();
    for e in min_e..=max_e {
        let cells: Vec<usize> = (0..ng)
            .filter_map(|h| {
                let t = prep.cohorts[h] as i64 + e;
                (t >= 1 && t < c as i64).then(|| cell_index(h, t as usize))
            })
            .collect();
        if !cells.is_empty() {
            event_specs.push(AggSpec::new(e, cells, &core, &prep, true));
        }
    }
    let cohort_specs: Vec<AggSpec> = (0..ng)
        .map(|h| {
            let g = prep.cohorts[h];
            let cells = (g..c).map(|t| cell_index(h, t)).collect();
            AggSpec::new(g as i64, cells, &core, &prep, false)
        })
        .collect();
    let checkpoint_specs: Vec<AggSpec> = (prep.cohorts[0]..c)
        .map(|t| {
            let cells = (0..ng)
                .filter(|&h| prep.cohorts[h] <= t)
                .map(|h| cell_index(h, t))
                .collect();
            AggSpec::new(t as i64, cells, &core, &prep, true)
        })
        .collect();
    let overall_cells: Vec<usize> = (0..ng)
        .flat_map(|h| (prep.cohorts[h]..c).map(move |t| (h, t)))
        .map(|(h, t)| cell_index(h, t))
        .collect();
    let overall_spec = vec![AggSpec::new(0, overall_cells, &core, &prep, true)];
    let mut families = [
        Family { specs: event_specs },
        Family {
            specs: cohort_specs,
        },
        Family {
            specs: checkpoint_specs,
        },
        Family {
            specs: overall_spec,
        },
    ];
    let mut scratch = Scratch::default();
    for fam in families.iter_mut() {
        for spec in fam.specs.iter_mut() {
            spec.compute_se(&core, &prep, &mut scratch);
        }
    }

    // ---------------- bootstrap ----------------
    let z = normal_quantile(1.0 - options.alpha / 2.0);
    let boot = if options.draws > 0 {
        Some(bootstrap::bootstrap(&prep, &core, &families, options))
    } else {
        None
    };

    // ---------------- assemble ----------------
    let band = |att: f64, se: f64, boot_se: Option<f64>, crit: f64| -> (f64, f64, bool) {
        let half = match boot_se {
            Some(bs) => crit * bs,
            None => z * se,
        };
        let (lo, hi) = (att - half, att + half);
        (lo, hi, lo > 0.0 || hi < 0.0)
    };
    let cell_crit = boot.as_ref().map_or(z, |b| b.cell_crit);
    let cells: Vec<Cell> = core
        .iter()
        .enumerate()
        .map(|(j, k)| {
            let boot_se = boot.as_ref().map(|b| b.cell_se[j]);
            let (lower, upper, significant) = band(k.att, k.se, boot_se, cell_crit);
            let g = prep.cohorts[k.h];
            Cell {
                cohort: g,
                checkpoint: k.c,
                base: k.b,
                event: k.c as i64 - g as i64,
                att: k.att,
                memorisation: -k.att,
                se: k.se,
                boot_se,
                lower,
                upper,
                significant,
            }
        })
        .collect();
    let mut out_families: Vec<(Vec<Aggregate>, f64)> = Vec::with_capacity(4);
    for (f, fam) in families.iter().enumerate() {
        let crit = boot.as_ref().map_or(z, |b| b.family_crit[f]);
        let aggs = fam
            .specs
            .iter()
            .enumerate()
            .map(|(a, s)| {
                let boot_se = boot.as_ref().map(|b| b.family_se[f][a]);
                let (lower, upper, significant) = band(s.att, s.se, boot_se, crit);
                Aggregate {
                    key: s.key,
                    att: s.att,
                    memorisation: -s.att,
                    se: s.se,
                    boot_se,
                    lower,
                    upper,
                    significant,
                    cells: s.cells.len(),
                }
            })
            .collect();
        out_families.push((aggs, crit));
    }
    let mut fams = out_families.into_iter();
    let (event, event_critical_value) = fams.next().unwrap_or_default();
    let (by_cohort, by_cohort_critical_value) = fams.next().unwrap_or_default();
    let (by_checkpoint, by_checkpoint_critical_value) = fams.next().unwrap_or_default();
    let (overall, _) = fams.next().unwrap_or_default();
    let overall = overall
        .into_iter()
        .next()
        .ok_or_else(|| DidError::InvalidOption {
            option: "panel",
            reason: "no post-treatment cell".to_string(),
        })?;

    let instantaneous = (0..ng)
        .map(|h| cells[cell_index(h, prep.cohorts[h])].clone())
        .collect();
    let residual = (0..ng)
        .map(|h| cells[cell_index(h, c - 1)].clone())
        .collect();

    // simple differences at c >= g
    let mut simple = Vec::new();
    let var0 = |h: usize, t: usize| -> f64 {
        let rows = &prep.yc[prep.starts[h] * c..prep.starts[h + 1] * c];
        rows.chunks_exact(c).map(|r| r[t] * r[t]).sum::<f64>() / prep.size(h) as f64
    };
    let var_inf: Vec<f64> = (0..c).map(|t| var0(never, t)).collect();
    for (h, &g) in prep.cohorts.iter().enumerate() {
        for (t, v_inf) in var_inf.iter().enumerate().skip(g) {
            let difference = prep.mean(h, t) - prep.mean(never, t);
            let se = (var0(h, t) / prep.size(h) as f64 + v_inf / n_inf as f64).sqrt();
            let (lower, upper) = (difference - z * se, difference + z * se);
            simple.push(SimpleDifference {
                cohort: g,
                checkpoint: t,
                difference,
                memorisation: -difference,
                se,
                lower,
                upper,
                significant: lower > 0.0 || upper < 0.0,
            });
        }
    }

    Ok(DidResult {
        options: options.clone(),
        instances: prep.n,
        checkpoints: c,
        never_trained: n_inf,
        cohorts: (0..ng)
            .map(|h| CohortSize {
                cohort: prep.cohorts[h],
                size: prep.size(h),
            })
            .collect(),
        critical_value: cell_crit,
        cells,
        event,
        event_critical_value,
        by_cohort,
        by_cohort_critical_value,
        by_checkpoint,
        by_checkpoint_critical_value,
        overall,
        instantaneous,
        residual,
        simple,
    })
}
