//! The estimator's options and what it returns: cells, aggregates, simple differences
//! and the whole result.

use serde::{Deserialize, Serialize};

/// The distribution of the bootstrap multipliers `u_i` (mean 0, variance 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Multiplier {
    /// `+1` or `-1` with probability 1/2 each (what `did` and `differences` use).
    #[default]
    Rademacher,
    /// Mammen's two-point weights: `(1 - sqrt 5)/2` with probability
    /// `(sqrt 5 + 1)/(2 sqrt 5)`, else `(1 + sqrt 5)/2`.
    Mammen,
}

/// Options of [`estimate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DidOptions {
    /// Significance level of the bands: `1 - alpha` coverage (default 0.05).
    pub alpha: f64,
    /// Bootstrap draws (default 1000, at most [`MAX_DRAWS`]). `0` skips the bootstrap:
    /// bands are then pointwise analytic intervals `att +- z_{1-alpha/2} se`, as
    /// `differences` reports with `boot_iterations=0`.
    pub draws: usize,
    /// Seed of the multiplier draws (ChaCha8). Results depend only on the panel and the
    /// options, not on the number of threads.
    pub seed: u64,
    /// Distribution of the multipliers (default Rademacher).
    pub multiplier: Multiplier,
    /// Worker threads for the bootstrap; `0` = as many as the machine has (at most
    /// [`MAX_THREADS`]). The numbers do not depend on it.
    pub threads: usize,
}

impl Default for DidOptions {
    fn default() -> Self {
        DidOptions {
            alpha: 0.05,
            draws: 1000,
            seed: 0,
            multiplier: Multiplier::Rademacher,
            threads: 0,
        }
    }
}

/// One group-time effect `ATT(g, c)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The cohort `g`.
    pub cohort: usize,
    /// The checkpoint `c` (`1..C`).
    pub checkpoint: usize,
    /// The base period: `g - 1` if `c >= g`, else `c - 1` (placebo cell).
    pub base: usize,
    /// Event time `e = c - g`; negative for pre-treatment (placebo) cells.
    pub event: i64,
    /// `ATT(g, c)`.
    pub att: f64,
    /// `-ATT(g, c)`.
    pub memorisation: f64,
    /// Analytic (influence-function) standard error of `att`.
    pub se: f64,
    /// Bootstrap standard error (`None` without bootstrap): the interquartile range of
    /// the bootstrap draws divided by `z_{0.75} - z_{0.25}`.
    pub boot_se: Option<f64>,
    /// Lower end of the band for `att`: `att - critical_value * boot_se` (simultaneous
    /// over all cells), or `att - z_{1-alpha/2} * se` without bootstrap.
    pub lower: f64,
    /// Upper end of the band for `att`.
    pub upper: f64,
    /// The band excludes 0.
    pub significant: bool,
}

/// An aggregate `theta = sum_k w_k ATT(g_k, c_k)` over a set of cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// What the cells share: the event time `e` ([`DidResult::event`]), the cohort
    /// ([`DidResult::by_cohort`]), the checkpoint ([`DidResult::by_checkpoint`]); `0` for
    /// [`DidResult::overall`].
    pub key: i64,
    /// The aggregate effect `theta`.
    pub att: f64,
    /// `-theta`.
    pub memorisation: f64,
    /// Analytic standard error from the aggregate influence function.
    pub se: f64,
    /// Bootstrap standard error (IQR rule), `None` without bootstrap.
    pub boot_se: Option<f64>,
    /// Lower end of the band (simultaneous over the aggregates of the same family).
    pub lower: f64,
    /// Upper end of the band.
    pub upper: f64,
    /// The band excludes 0.
    pub significant: bool,
    /// How many cells were aggregated.
    pub cells: usize,
}

/// The naive comparison `mean_{G=g} Y_c - mean_{G=inf} Y_c` at a checkpoint `c >= g`:
/// treated minus never-trained, with no pre-period correction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimpleDifference {
    /// The cohort `g`.
    pub cohort: usize,
    /// The checkpoint `c >= g`.
    pub checkpoint: usize,
    /// `mean_{G=g} Y_c - mean_{G=inf} Y_c`.
    pub difference: f64,
    /// `-difference`.
    pub memorisation: f64,
    /// `sqrt(s2_g/n_g + s2_inf/n_inf)`, variances with divisor `n` (as for the cells).
    pub se: f64,
    /// Pointwise `difference - z_{1-alpha/2} se`.
    pub lower: f64,
    /// Pointwise `difference + z_{1-alpha/2} se`.
    pub upper: f64,
    /// The interval excludes 0.
    pub significant: bool,
}

/// The size of one cohort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortSize {
    /// The cohort `g`.
    pub cohort: usize,
    /// Its number of instances.
    pub size: usize,
}

/// Everything [`estimate`] computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DidResult {
    /// The options used.
    pub options: DidOptions,
    /// Number of instances `N`.
    pub instances: usize,
    /// Number of checkpoints `C`.
    pub checkpoints: usize,
    /// Number of never-trained instances.
    pub never_trained: usize,
    /// Cohorts in increasing order with their sizes.
    pub cohorts: Vec<CohortSize>,
    /// Critical value of the cell bands: the `1 - alpha` quantile over bootstrap draws of
    /// `max_k |T*_k| / boot_se_k` over all cells `k` (pre- and post-treatment, as `did`
    /// and `differences` do; cells whose `boot_se * sqrt(N) <= 10 sqrt(eps)` are left
    /// out of the max, as in `did`). Quantiles use the inverted empirical CDF (numpy's
    /// `inverted_cdf`, R's type 1). Without bootstrap: `z_{1-alpha/2}`.
    pub critical_value: f64,
    /// `ATT(g, c)` for every cohort `g` and checkpoint `c = 1..C`, cohort-major.
    pub cells: Vec<Cell>,
    /// Event-time aggregates for every event time `e = c - g` present (negative = placebo),
    /// with cohort-size weights and the `omega` term (`differences`' `"event"`).
    pub event: Vec<Aggregate>,
    /// Critical value of the event-time bands (simultaneous over all event times).
    pub event_critical_value: f64,
    /// Per-cohort averages of the post-treatment cells (`c >= g`), equal weights, no
    /// `omega` term since the weights are not estimated (`differences`' `"cohort"`).
    pub by_cohort: Vec<Aggregate>,
    /// Critical value of the per-cohort bands.
    pub by_cohort_critical_value: f64,
    /// Per-checkpoint aggregates of the post-treatment cells with `c` fixed, cohort-size
    /// weights and the `omega` term (`differences`' `"time"`).
    pub by_checkpoint: Vec<Aggregate>,
    /// Critical value of the per-checkpoint bands.
    pub by_checkpoint_critical_value: f64,
    /// All post-treatment cells with cohort-size weights and the `omega` term
    /// (`differences`' `"simple"`); its band is pointwise.
    pub overall: Aggregate,
    /// Instantaneous effects: the cell `c = g` of each cohort (bands from the cells).
    pub instantaneous: Vec<Cell>,
    /// Residual effects: the cell at the last checkpoint `c = C - 1` of each cohort.
    pub residual: Vec<Cell>,
    /// The naive simple differences for every cohort and checkpoint `c >= g`.
    pub simple: Vec<SimpleDifference>,
}
