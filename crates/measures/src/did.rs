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

/// The CSV header of a panel file, in order.
pub const CSV_HEADER: [&str; 4] = ["instance", "cohort", "checkpoint", "outcome"];

/// The most bootstrap draws [`estimate`] accepts (memory grows with draws x checkpoints).
pub const MAX_DRAWS: usize = 20_000;

/// The most worker threads the bootstrap uses.
pub const MAX_THREADS: usize = 64;

/// Where in the input a row came from: a line of a CSV file (1-based, the header is line
/// 1) or the position of a row given to [`Panel::from_rows`] (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Location {
    /// A line of a CSV file, counted from 1 (the header is line 1).
    Line(u64),
    /// A row given to [`Panel::from_rows`], counted from 1.
    Row(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Row(n) => write!(f, "row {n}"),
        }
    }
}

fn cohort_text(cohort: Option<usize>) -> String {
    match cohort {
        Some(g) => format!("cohort {g}"),
        None => "never trained (empty cohort)".to_string(),
    }
}

/// Why a panel was rejected. Every message names the line, row, cohort or instance
/// concerned, and the problem.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum PanelError {
    /// The first line is not exactly `instance,cohort,checkpoint,outcome`.
    #[error("line 1: the header must be `instance,cohort,checkpoint,outcome`, found `{found}`")]
    Header {
        /// The header as read (fields joined by commas).
        found: String,
    },
    /// The input has no header line at all.
    #[error("line 1: the file is empty; expected the header `instance,cohort,checkpoint,outcome`")]
    NoHeader,
    /// A data row with too few or too many columns.
    #[error("{at}: expected 4 columns (instance,cohort,checkpoint,outcome), found {found}")]
    ColumnCount {
        /// Where.
        at: Location,
        /// How many columns the row has.
        found: usize,
    },
    /// The CSV reader failed (for instance, invalid UTF-8).
    #[error("{at}: could not read the CSV: {message}")]
    Csv {
        /// Where.
        at: Location,
        /// The reader's message.
        message: String,
    },
    /// An empty instance name.
    #[error("{at}: the instance name is empty")]
    EmptyInstance {
        /// Where.
        at: Location,
    },
    /// A cohort that is not empty and not a non-negative integer.
    #[error(
        "{at}: cohort `{value}` is not a checkpoint index (a non-negative integer), nor empty (never trained)"
    )]
    BadCohort {
        /// Where.
        at: Location,
        /// The text found.
        value: String,
    },
    /// A checkpoint that is not a non-negative integer.
    #[error("{at}: checkpoint `{value}` is not a non-negative integer")]
    BadCheckpoint {
        /// Where.
        at: Location,
        /// The text found.
        value: String,
    },
    /// An outcome that is not a finite number (non-numeric, NaN or infinite).
    #[error("{at}: outcome `{value}` is not a finite number")]
    BadOutcome {
        /// Where.
        at: Location,
        /// The text found.
        value: String,
    },
    /// A second row for the same (instance, checkpoint).
    #[error(
        "{at}: duplicate row for instance `{instance}` at checkpoint {checkpoint} (first given at {first})"
    )]
    Duplicate {
        /// Where the duplicate is.
        at: Location,
        /// The instance.
        instance: String,
        /// The checkpoint.
        checkpoint: usize,
        /// Where the first row for it is.
        first: Location,
    },
    /// An instance whose cohort differs between its rows.
    #[error(
        "{at}: instance `{instance}` has {found} here but {expected} at {first}; an instance's cohort must be the same on all its rows"
    )]
    CohortMismatch {
        /// Where.
        at: Location,
        /// The instance.
        instance: String,
        /// The cohort on this row, in words.
        found: String,
        /// The cohort on its first row, in words.
        expected: String,
        /// Where its first row is.
        first: Location,
    },
    /// No data rows (or no instances).
    #[error("the panel has no data rows")]
    Empty,
    /// A checkpoint index that no row has, below the largest one.
    #[error(
        "checkpoint {checkpoint} is missing from the panel: checkpoints must be 0, 1, ..., {last} without gaps"
    )]
    MissingCheckpoint {
        /// The first missing checkpoint.
        checkpoint: usize,
        /// The largest checkpoint present.
        last: usize,
    },
    /// An instance without an outcome at some checkpoint.
    #[error("unbalanced panel: instance `{instance}` has no outcome at checkpoint {checkpoint}")]
    Unbalanced {
        /// The instance.
        instance: String,
        /// The first checkpoint it lacks.
        checkpoint: usize,
    },
    /// Fewer than two checkpoints: no cell has a base period.
    #[error("the panel needs at least 2 checkpoints (0 and 1), found {found}")]
    TooFewCheckpoints {
        /// How many checkpoints there are.
        found: usize,
    },
    /// No never-trained instance: there is no control group.
    #[error("no never-trained instances: the control group (rows with an empty cohort) is empty")]
    NoNeverTrained,
    /// A single never-trained instance: its variance cannot be estimated.
    #[error("the never-trained group has a single instance (`{instance}`); at least 2 are needed")]
    SingleNeverTrained {
        /// The instance.
        instance: String,
    },
    /// Every instance is never trained.
    #[error("no trained instances: every instance has an empty cohort")]
    NoCohorts,
    /// A cohort with a single instance: its variance cannot be estimated.
    #[error(
        "cohort {cohort} has a single instance (`{instance}`); at least 2 are needed for a standard error"
    )]
    SingletonCohort {
        /// The cohort.
        cohort: usize,
        /// Its only instance.
        instance: String,
    },
    /// Cohort 0: trained before the first checkpoint, so no pre-period.
    #[error(
        "cohort 0 (instance `{instance}`) is trained before the first checkpoint, so it has no pre-period; a never-trained instance has an empty cohort"
    )]
    CohortAtFirstCheckpoint {
        /// An instance of cohort 0.
        instance: String,
    },
    /// A cohort after the last checkpoint: never observed trained.
    #[error(
        "cohort {cohort} (instance `{instance}`) is beyond the last checkpoint {last}; a never-trained instance has an empty cohort"
    )]
    CohortBeyondLast {
        /// The cohort.
        cohort: usize,
        /// An instance of it.
        instance: String,
        /// The last checkpoint.
        last: usize,
    },
    /// Two instances with the same name (in a [`Panel`] built by hand).
    #[error("instance `{instance}` appears twice in the panel")]
    DuplicateInstance {
        /// The instance.
        instance: String,
    },
    /// A non-finite outcome (in a [`Panel`] built by hand).
    #[error("instance `{instance}`: the outcome at checkpoint {checkpoint} is not finite")]
    NonFinite {
        /// The instance.
        instance: String,
        /// The checkpoint.
        checkpoint: usize,
    },
    /// Field lengths that do not agree (in a [`Panel`] built by hand).
    #[error("inconsistent panel: {0}")]
    Shape(String),
}

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

/// A balanced panel of outcomes: `N` instances by `C` checkpoints.
///
/// Plain data: the fields are public, and [`Panel::validate`] (called by [`estimate`])
/// checks every invariant, so a panel built or deserialised by hand is as safe as one
/// read by [`Panel::from_csv`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    /// Instance names, in order of first appearance.
    pub instances: Vec<String>,
    /// Each instance's cohort: `Some(g)` = first trained before checkpoint `g` (after
    /// checkpoint `g - 1`), `None` = never trained (the control group).
    pub cohorts: Vec<Option<usize>>,
    /// The number of checkpoints `C`; checkpoints are `0..C`.
    pub checkpoints: usize,
    /// Row-major `N x C` outcomes: instance `i` at checkpoint `c` is
    /// `outcomes[i * checkpoints + c]`.
    pub outcomes: Vec<f64>,
}

struct RawRow {
    instance: usize,
    checkpoint: usize,
    outcome: f64,
    at: Location,
}

#[derive(Default)]
struct Builder {
    names: Vec<String>,
    index: HashMap<String, usize>,
    cohort: Vec<(Option<usize>, Location)>,
    rows: Vec<RawRow>,
}

impl Builder {
    fn push(
        &mut self,
        name: &str,
        cohort: Option<usize>,
        checkpoint: usize,
        outcome: f64,
        at: Location,
    ) -> Result<(), PanelError> {
        if name.is_empty() {
            return Err(PanelError::EmptyInstance { at });
        }
        if !outcome.is_finite() {
            return Err(PanelError::BadOutcome {
                at,
                value: outcome.to_string(),
            });
        }
        // rows of one instance usually come together: try the previous row's first
        let found = match self.rows.last() {
            Some(last) if self.names[last.instance] == name => Some(last.instance),
            _ => self.index.get(name).copied(),
        };
        let instance = match found {
            Some(i) => {
                let (expected, first) = self.cohort[i];
                if expected != cohort {
                    return Err(PanelError::CohortMismatch {
                        at,
                        instance: name.to_string(),
                        found: cohort_text(cohort),
                        expected: cohort_text(expected),
                        first,
                    });
                }
                i
            }
            None => {
                let i = self.names.len();
                self.index.insert(name.to_string(), i);
                self.names.push(name.to_string());
                self.cohort.push((cohort, at));
                i
            }
        };
        self.rows.push(RawRow {
            instance,
            checkpoint,
            outcome,
            at,
        });
        Ok(())
    }

    fn finish(self) -> Result<Panel, PanelError> {
        if self.rows.is_empty() {
            return Err(PanelError::Empty);
        }
        let n = self.names.len();
        let mut per: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        for (r, row) in self.rows.iter().enumerate() {
            per[row.instance].push((row.checkpoint, r));
        }
        // duplicates: report the one whose second row comes first in the input
        let mut dup: Option<(usize, usize)> = None;
        for list in per.iter_mut() {
            list.sort_unstable();
            for w in list.windows(2) {
                if w[0].0 == w[1].0 {
                    let (first, second) = (w[0].1.min(w[1].1), w[0].1.max(w[1].1));
                    if dup.is_none_or(|(_, s)| second < s) {
                        dup = Some((first, second));
                    }
                }
            }
        }
        if let Some((first, second)) = dup {
            let row = &self.rows[second];
            return Err(PanelError::Duplicate {
                at: row.at,
                instance: self.names[row.instance].clone(),
                checkpoint: row.checkpoint,
                first: self.rows[first].at,
            });
        }
        // checkpoints must be 0..C without gaps
        let last = self.rows.iter().map(|r| r.checkpoint).max().unwrap_or(0);
        if last >= self.rows.len() {
            // more checkpoints than rows: there is a gap; find the first one
            let mut seen: Vec<usize> = self.rows.iter().map(|r| r.checkpoint).collect();
            seen.sort_unstable();
            seen.dedup();
            let missing = seen
                .iter()
                .enumerate()
                .find(|&(k, &v)| k != v)
                .map(|(k, _)| k)
                .unwrap_or(seen.len());
            return Err(PanelError::MissingCheckpoint {
                checkpoint: missing,
                last,
            });
        }
        let c = last + 1;
        let mut present = vec![false; c];
        for r in &self.rows {
            present[r.checkpoint] = true;
        }
        if let Some(missing) = present.iter().position(|p| !p) {
            return Err(PanelError::MissingCheckpoint {
                checkpoint: missing,
                last,
            });
        }
        // balanced: each instance's (sorted, distinct) checkpoints are exactly 0..C
        for (i, list) in per.iter().enumerate() {
            if list.len() != c {
                let missing = list
                    .iter()
                    .enumerate()
                    .find(|&(k, &(v, _))| k != v)
                    .map(|(k, _)| k)
                    .unwrap_or(list.len());
                return Err(PanelError::Unbalanced {
                    instance: self.names[i].clone(),
                    checkpoint: missing,
                });
            }
        }
        let mut outcomes = vec![0.0; n * c];
        for r in &self.rows {
            outcomes[r.instance * c + r.checkpoint] = r.outcome;
        }
        let panel = Panel {
            instances: self.names,
            cohorts: self.cohort.into_iter().map(|(g, _)| g).collect(),
            checkpoints: c,
            outcomes,
        };
        check_groups(&panel)?;
        Ok(panel)
    }
}

/// Parses a cohort or checkpoint: a non-negative integer, also written as an integral
/// decimal such as `3.0` (what pandas writes for an integer column with missing values).
fn parse_index(text: &str) -> Option<usize> {
    if let Ok(v) = text.parse::<usize>() {
        return Some(v);
    }
    let v: f64 = text.parse().ok()?;
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9.007_199_254_740_992e15 {
        Some(v as usize)
    } else {
        None
    }
}

/// Group-level invariants shared by every constructor and by [`Panel::validate`].
fn check_groups(panel: &Panel) -> Result<(), PanelError> {
    let c = panel.checkpoints;
    if c < 2 {
        return Err(PanelError::TooFewCheckpoints { found: c });
    }
    for (i, g) in panel.cohorts.iter().enumerate() {
        match *g {
            Some(0) => {
                return Err(PanelError::CohortAtFirstCheckpoint {
                    instance: panel.instances[i].clone(),
                });
            }
            Some(g) if g >= c => {
                return Err(PanelError::CohortBeyondLast {
                    cohort: g,
                    instance: panel.instances[i].clone(),
                    last: c - 1,
                });
            }
            _ => {}
        }
    }
    let mut sizes: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut never: Vec<usize> = Vec::new();
    for (i, g) in panel.cohorts.iter().enumerate() {
        match g {
            Some(g) => sizes.entry(*g).or_insert((0, i)).0 += 1,
            None => never.push(i),
        }
    }
    match never.len() {
        0 => return Err(PanelError::NoNeverTrained),
        1 => {
            return Err(PanelError::SingleNeverTrained {
                instance: panel.instances[never[0]].clone(),
            });
        }
        _ => {}
    }
    if sizes.is_empty() {
        return Err(PanelError::NoCohorts);
    }
    if let Some((&cohort, &(_, i))) = sizes.iter().find(|(_, (n, _))| *n == 1) {
        return Err(PanelError::SingletonCohort {
            cohort,
            instance: panel.instances[i].clone(),
        });
    }
    Ok(())
}

impl Panel {
    /// Builds a panel from rows `(instance, cohort, checkpoint, outcome)` in any order.
    /// Errors name the row (1-based position in the iterator). Cohort `None` marks a
    /// never-trained instance.
    pub fn from_rows<I>(rows: I) -> Result<Panel, PanelError>
    where
        I: IntoIterator<Item = (String, Option<usize>, usize, f64)>,
    {
        let mut b = Builder::default();
        for (k, (name, cohort, checkpoint, outcome)) in rows.into_iter().enumerate() {
            b.push(&name, cohort, checkpoint, outcome, Location::Row(k + 1))?;
        }
        b.finish()
    }

    /// Reads a panel from CSV with the header `instance,cohort,checkpoint,outcome` (exactly
    /// those four columns, in that order; surrounding spaces and a UTF-8 byte-order mark
    /// are ignored). An empty cohort marks a never-trained instance; cohorts and
    /// checkpoints are non-negative integers (`3.0` is accepted as `3`); outcomes are
    /// finite numbers. Blank lines are skipped. Errors name the line.
    pub fn from_csv<R: io::Read>(reader: R) -> Result<Panel, PanelError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut record = csv::StringRecord::new();
        let csv_error = |e: csv::Error, fallback: u64| PanelError::Csv {
            at: Location::Line(e.position().map(|p| p.line()).unwrap_or(fallback)),
            message: e.to_string(),
        };
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Err(PanelError::NoHeader),
            Err(e) => return Err(csv_error(e, 1)),
        }
        let header: Vec<&str> = record
            .iter()
            .enumerate()
            .map(|(k, f)| {
                if k == 0 {
                    f.trim_start_matches('\u{feff}')
                } else {
                    f
                }
                .trim()
            })
            .collect();
        if header != CSV_HEADER {
            return Err(PanelError::Header {
                found: header.join(","),
            });
        }
        let mut b = Builder::default();
        let mut line = 1;
        loop {
            match rdr.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(e, line + 1)),
            }
            line = record.position().map(|p| p.line()).unwrap_or(line + 1);
            let at = Location::Line(line);
            if record.len() != 4 {
                return Err(PanelError::ColumnCount {
                    at,
                    found: record.len(),
                });
            }
            let (name, cohort_field, checkpoint_field, outcome_field) = (
                record[0].trim(),
                record[1].trim(),
                record[2].trim(),
                record[3].trim(),
            );
            let cohort = if cohort_field.is_empty() {
                None
            } else {
                Some(
                    parse_index(cohort_field).ok_or_else(|| PanelError::BadCohort {
                        at,
                        value: cohort_field.to_string(),
                    })?,
                )
            };
            let checkpoint =
                parse_index(checkpoint_field).ok_or_else(|| PanelError::BadCheckpoint {
                    at,
                    value: checkpoint_field.to_string(),
                })?;
            let outcome = outcome_field
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| PanelError::BadOutcome {
                    at,
                    value: outcome_field.to_string(),
                })?;
            b.push(name, cohort, checkpoint, outcome, at)?;
        }
        b.finish()
    }

    /// Writes the panel as CSV in the format [`Panel::from_csv`] reads (outcomes in
    /// Rust's shortest round-trip notation, so reading it back gives the same numbers).
    pub fn write_csv<W: io::Write>(&self, writer: W) -> io::Result<()> {
        let mut w = csv::Writer::from_writer(writer);
        w.write_record(CSV_HEADER)?;
        let c = self.checkpoints;
        for (i, name) in self.instances.iter().enumerate() {
            let cohort = self.cohorts.get(i).copied().flatten();
            let cohort = cohort.map(|g| g.to_string()).unwrap_or_default();
            for t in 0..c {
                let y = self.outcomes.get(i * c + t).copied().unwrap_or(f64::NAN);
                w.write_record([name.as_str(), &cohort, &t.to_string(), &y.to_string()])?;
            }
        }
        w.flush()?;
        Ok(())
    }

    /// The number of instances `N`.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether the panel has no instances.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The outcome of instance `i` at checkpoint `c`, if both exist.
    pub fn outcome(&self, i: usize, c: usize) -> Option<f64> {
        if c >= self.checkpoints {
            return None;
        }
        self.outcomes
            .get(i.checked_mul(self.checkpoints)?.checked_add(c)?)
            .copied()
    }

    /// Checks every invariant of a valid panel (see the module docs).
    pub fn validate(&self) -> Result<(), PanelError> {
        let n = self.instances.len();
        if n == 0 {
            return Err(PanelError::Empty);
        }
        if self.cohorts.len() != n {
            return Err(PanelError::Shape(format!(
                "{n} instances but {} cohorts",
                self.cohorts.len()
            )));
        }
        let expected = n.checked_mul(self.checkpoints);
        if expected != Some(self.outcomes.len()) {
            return Err(PanelError::Shape(format!(
                "{n} instances x {} checkpoints needs {} outcomes, found {}",
                self.checkpoints,
                expected.map_or("too many".to_string(), |e| e.to_string()),
                self.outcomes.len()
            )));
        }
        let mut seen = HashMap::with_capacity(n);
        for name in &self.instances {
            if seen.insert(name.as_str(), ()).is_some() {
                return Err(PanelError::DuplicateInstance {
                    instance: name.clone(),
                });
            }
        }
        if let Some(k) = self.outcomes.iter().position(|y| !y.is_finite()) {
            return Err(PanelError::NonFinite {
                instance: self.instances[k / self.checkpoints].clone(),
                checkpoint: k % self.checkpoints,
            });
        }
        check_groups(self)
    }
}

// -------------------------------------------------------------------------------------
// options and results
// -------------------------------------------------------------------------------------

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

// -------------------------------------------------------------------------------------
// normal quantile
// -------------------------------------------------------------------------------------

/// The standard normal quantile function (Wichura's AS 241, about 1e-16 relative
/// accuracy). Returns `-inf`/`+inf` at 0 and 1 and NaN outside `[0, 1]`.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((2_509.080_928_730_122_7 * r + 33_430.575_583_588_13) * r
                + 67_265.770_927_008_7)
                * r
                + 45_921.953_931_549_87)
                * r
                + 13_731.693_765_509_46)
                * r
                + 1_971.590_950_306_551_4)
                * r
                + 133.141_667_891_784_38)
                * r
                + 3.387_132_872_796_366_5)
            / (((((((5_226.495_278_852_546 * r + 28_729.085_735_721_943) * r
                + 39_307.895_800_092_71)
                * r
                + 21_213.794_301_586_597)
                * r
                + 5_394.196_021_424_751)
                * r
                + 687.187_007_492_057_9)
                * r
                + 42.313_330_701_600_91)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        (((((((7.745_450_142_783_414e-4 * r + 0.022_723_844_989_269_184) * r
            + 0.241_780_725_177_450_6)
            * r
            + 1.270_458_252_452_368_4)
            * r
            + 3.647_848_324_763_204_5)
            * r
            + 5.769_497_221_460_691)
            * r
            + 4.630_337_846_156_545)
            * r
            + 1.423_437_110_749_683_5)
            / (((((((1.050_750_071_644_416_9e-9 * r + 5.475_938_084_995_345e-4) * r
                + 0.015_198_666_563_616_457)
                * r
                + 0.148_103_976_427_480_08)
                * r
                + 0.689_767_334_985_1)
                * r
                + 1.676_384_830_183_803_8)
                * r
                + 2.053_191_626_637_759)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((2.010_334_399_292_288_1e-7 * r + 2.711_555_568_743_487_6e-5) * r
            + 0.001_242_660_947_388_078_4)
            * r
            + 0.026_532_189_526_576_124)
            * r
            + 0.296_560_571_828_504_9)
            * r
            + 1.784_826_539_917_291_3)
            * r
            + 5.463_784_911_164_114)
            * r
            + 6.657_904_643_501_103)
            / (((((((2.044_263_103_389_939_7e-15 * r + 1.421_511_758_316_446e-7) * r
                + 1.846_318_317_510_054_8e-5)
                * r
                + 7.868_691_311_456_133e-4)
                * r
                + 0.014_875_361_290_850_615)
                * r
                + 0.136_929_880_922_735_8)
                * r
                + 0.599_832_206_555_888)
                * r
                + 1.0)
    };
    if q < 0.0 { -val } else { val }
}

/// The `q` quantile of `values` by the inverted empirical CDF (numpy's `inverted_cdf`,
/// R's type 1): the `ceil(n q)`-th smallest value (at least the smallest). `values` is
/// reordered. NaN if empty.
fn quantile_inverted_cdf(values: &mut [f64], q: f64) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let k = ((n as f64) * q).ceil();
    let idx = if k >= 1.0 {
        ((k as usize) - 1).min(n - 1)
    } else {
        0
    };
    let (_, v, _) = values.select_nth_unstable_by(idx, f64::total_cmp);
    *v
}

/// Bootstrap standard error by the rule of `did`/`differences`:
/// `(Q_0.75 - Q_0.25) / (z_0.75 - z_0.25)` of the draws (inverted-CDF quantiles).
fn iqr_se(draws: &[f64], scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend_from_slice(draws);
    let hi = quantile_inverted_cdf(scratch, 0.75);
    let lo = quantile_inverted_cdf(scratch, 0.25);
    (hi - lo) / (normal_quantile(0.75) - normal_quantile(0.25))
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
        Some(bootstrap(&prep, &core, &families, options))
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

// -------------------------------------------------------------------------------------
// multiplier bootstrap
// -------------------------------------------------------------------------------------

struct BootOut {
    cell_se: Vec<f64>,
    cell_crit: f64,
    family_se: Vec<Vec<f64>>,
    family_crit: Vec<f64>,
}

/// The multipliers: bit `d` of instance `i` (grouped order) chooses between the two
/// values of the two-point distribution.
struct Multipliers {
    words: usize,
    bits: Vec<u64>,
    one: f64,
    zero: f64,
}

impl Multipliers {
    /// Draws the multipliers from ChaCha8 seeded with `seed`, instance by instance
    /// (grouped order), draws in order within an instance.
    fn draw(n: usize, draws: usize, kind: Multiplier, seed: u64) -> Multipliers {
        let words = draws.div_ceil(64);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bits = vec![0u64; n * words];
        let sqrt5 = 5f64.sqrt();
        match kind {
            Multiplier::Rademacher => {
                for w in bits.iter_mut() {
                    *w = rng.next_u64();
                }
                Multipliers {
                    words,
                    bits,
                    one: 1.0,
                    zero: -1.0,
                }
            }
            Multiplier::Mammen => {
                let p = (sqrt5 + 1.0) / (2.0 * sqrt5);
                for i in 0..n {
                    for d in 0..draws {
                        if rng.random::<f64>() < p {
                            bits[i * words + d / 64] |= 1 << (d % 64);
                        }
                    }
                }
                Multipliers {
                    words,
                    bits,
                    one: (1.0 - sqrt5) / 2.0,
                    zero: (1.0 + sqrt5) / 2.0,
                }
            }
        }
    }

    #[inline]
    fn value(&self, i: usize, d: usize) -> f64 {
        if (self.bits[i * self.words + d / 64] >> (d % 64)) & 1 == 1 {
            self.one
        } else {
            self.zero
        }
    }
}

/// `Z_h[d][t] = sum_{i in h} u_{d,i} Yc_{i,t}` for draws `d0..d0 + z.len() / C` and
/// `U_h[d] = sum_{i in h} u_{d,i}`, accumulated into `z` and `u`.
fn group_sums(
    prep: &Prepared,
    mult: &Multipliers,
    h: usize,
    d0: usize,
    z: &mut [f64],
    u: &mut [f64],
) {
    let c = prep.c;
    let (s, e) = (prep.starts[h], prep.starts[h + 1]);
    let nd = u.len();
    let mut i = s;
    // four instances at a time: one pass over each Z row per four rows of Y
    while i + 4 <= e {
        let r0 = &prep.yc[i * c..(i + 1) * c];
        let r1 = &prep.yc[(i + 1) * c..(i + 2) * c];
        let r2 = &prep.yc[(i + 2) * c..(i + 3) * c];
        let r3 = &prep.yc[(i + 3) * c..(i + 4) * c];
        for d in 0..nd {
            let (u0, u1, u2, u3) = (
                mult.value(i, d0 + d),
                mult.value(i + 1, d0 + d),
                mult.value(i + 2, d0 + d),
                mult.value(i + 3, d0 + d),
            );
            u[d] += (u0 + u1) + (u2 + u3);
            let zr = &mut z[d * c..(d + 1) * c];
            for t in 0..c {
                zr[t] += (u0 * r0[t] + u1 * r1[t]) + (u2 * r2[t] + u3 * r3[t]);
            }
        }
        i += 4;
    }
    while i < e {
        let r = &prep.yc[i * c..(i + 1) * c];
        for d in 0..nd {
            let ui = mult.value(i, d0 + d);
            u[d] += ui;
            for (zt, y) in z[d * c..(d + 1) * c].iter_mut().zip(r) {
                *zt += ui * y;
            }
        }
        i += 1;
    }
}

/// Per-cohort bootstrap output: the draws `T*_k` of its cells (cell-major), their
/// bootstrap SEs, the per-draw max of `|T*_k| / se_k` over its cells, and `U_g`.
struct CohortBoot {
    tstar: Vec<f64>,
    se: Vec<f64>,
    max_t: Vec<f64>,
    u: Vec<f64>,
}

/// Threshold below which a bootstrap SE is treated as zero and its cell left out of the
/// critical value (`did`: `bSigma <= sqrt(eps) * 10`, on the `sqrt(N)` scale).
fn se_is_zero(se: f64, n: usize) -> bool {
    se.is_nan() || se * (n as f64).sqrt() <= 10.0 * f64::EPSILON.sqrt()
}

/// The multiplier bootstrap. For draw `d` with multipliers `u_{d,i}`, the bootstrap
/// deviation of a cell is `T*_k = (1/N) sum_i u_{d,i} psi_{k,i}`, which with the
/// centred outcomes `Yc` and `Z_h[d][t] = sum_{i in h} u_{d,i} Yc_{i,t}` is
/// `(Z_g[d][c] - Z_g[d][b]) / n_g - (Z_inf[d][c] - Z_inf[d][b]) / n_inf`, and of an
/// aggregate `sum_k w_k T*_k + sum_k U_{g_k}[d] (ATT_k - theta) / M`. (`differences`
/// computes `sqrt(N) * mean_i(u_i psi_i)`, the same draws times `sqrt(N)`.)
fn bootstrap(
    prep: &Prepared,
    core: &[CellCore],
    families: &[Family; 4],
    options: &DidOptions,
) -> BootOut {
    let c = prep.c;
    let draws = options.draws;
    let ng = prep.cohorts.len();
    let never = prep.never();
    let n = prep.n;
    // wasm32 in the browser has no threads: everything runs inline there.
    let threads = if cfg!(target_family = "wasm") {
        1
    } else if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, |p| p.get())
    } else {
        options.threads
    }
    .clamp(1, MAX_THREADS);
    let mult = Multipliers::draw(n, draws, options.multiplier, options.seed);

    // Z_inf for all draws, in blocks of draws (each block is computed by one thread in a
    // fixed order, so the result does not depend on the number of threads)
    const BLOCK: usize = 64;
    let mut z_inf = vec![0.0; draws * c];
    let mut u_inf = vec![0.0; draws];
    {
        let blocks: Vec<(usize, &mut [f64], &mut [f64])> = z_inf
            .chunks_mut(BLOCK * c)
            .zip(u_inf.chunks_mut(BLOCK))
            .enumerate()
            .map(|(k, (z, u))| (k * BLOCK, z, u))
            .collect();
        let per = blocks.len().div_ceil(threads.max(1)).max(1);
        let mut blocks = blocks;
        if threads == 1 {
            for (d0, z, u) in blocks.drain(..) {
                group_sums(prep, &mult, never, d0, z, u);
            }
        }
        std::thread::scope(|s| {
            while !blocks.is_empty() {
                let take = per.min(blocks.len());
                let chunk: Vec<_> = blocks.drain(..take).collect();
                let mult = &mult;
                s.spawn(move || {
                    for (d0, z, u) in chunk {
                        group_sums(prep, mult, never, d0, z, u);
                    }
                });
            }
        });
    }
    let n_inf = prep.n_inf() as f64;

    // membership of each cell in the aggregates: (family, aggregate, weight, omega)
    let mut member: Vec<Vec<(usize, usize, f64, f64)>> = vec![Vec::new(); core.len()];
    for (f, fam) in families.iter().enumerate() {
        for (a, spec) in fam.specs.iter().enumerate() {
            for (j, &k) in spec.cells.iter().enumerate() {
                member[k].push((f, a, spec.weights[j], spec.omega[j]));
            }
        }
    }
    let mut acc: Vec<Vec<Vec<f64>>> = families
        .iter()
        .map(|fam| vec![vec![0.0; draws]; fam.specs.len()])
        .collect();
    let mut cell_se = vec![0.0; core.len()];
    let mut max_t = vec![0.0f64; draws];

    let per_cohort = |h: usize| -> CohortBoot {
        let mut z = vec![0.0; draws * c];
        let mut u = vec![0.0; draws];
        for (k, (zb, ub)) in z.chunks_mut(BLOCK * c).zip(u.chunks_mut(BLOCK)).enumerate() {
            group_sums(prep, &mult, h, k * BLOCK, zb, ub);
        }
        let nh = prep.size(h) as f64;
        let cells = c - 1;
        let mut tstar = vec![0.0; cells * draws];
        for d in 0..draws {
            let zg = &z[d * c..(d + 1) * c];
            let zi = &z_inf[d * c..(d + 1) * c];
            for j in 0..cells {
                let k = core[h * cells + j];
                tstar[j * draws + d] = (zg[k.c] - zg[k.b]) / nh - (zi[k.c] - zi[k.b]) / n_inf;
            }
        }
        let mut scratch = Vec::with_capacity(draws);
        let mut se = vec![0.0; cells];
        let mut mt = vec![0.0f64; draws];
        for j in 0..cells {
            let col = &tstar[j * draws..(j + 1) * draws];
            se[j] = iqr_se(col, &mut scratch);
            if !se_is_zero(se[j], n) {
                for (m, x) in mt.iter_mut().zip(col) {
                    *m = m.max(x.abs() / se[j]);
                }
            }
        }
        CohortBoot {
            tstar,
            se,
            max_t: mt,
            u,
        }
    };

    // cohorts in batches of `threads`, reduced in cohort order (deterministic)
    let mut h0 = 0;
    while h0 < ng {
        let h1 = (h0 + threads.max(1)).min(ng);
        let results: Vec<CohortBoot> = if threads == 1 {
            (h0..h1).map(per_cohort).collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (h0..h1).map(|h| s.spawn(move || per_cohort(h))).collect();
                handles
                    .into_iter()
                    .map(|hd| hd.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        for (off, res) in results.into_iter().enumerate() {
            let h = h0 + off;
            let cells = c - 1;
            for j in 0..cells {
                let k = h * cells + j;
                cell_se[k] = res.se[j];
                let col = &res.tstar[j * draws..(j + 1) * draws];
                for &(f, a, w, om) in &member[k] {
                    let dst = &mut acc[f][a];
                    if om != 0.0 {
                        for ((x, t), uu) in dst.iter_mut().zip(col).zip(&res.u) {
                            *x += w * t + om * uu;
                        }
                    } else {
                        for (x, t) in dst.iter_mut().zip(col) {
                            *x += w * t;
                        }
                    }
                }
            }
            for (m, x) in max_t.iter_mut().zip(&res.max_t) {
                *m = m.max(*x);
            }
        }
        h0 = h1;
    }

    let q = 1.0 - options.alpha;
    let cell_crit = quantile_inverted_cdf(&mut max_t, q);
    let mut scratch = Vec::with_capacity(draws);
    let mut family_se = Vec::with_capacity(4);
    let mut family_crit = Vec::with_capacity(4);
    for fam_acc in &acc {
        let ses: Vec<f64> = fam_acc.iter().map(|a| iqr_se(a, &mut scratch)).collect();
        let mut m = vec![0.0f64; draws];
        for (a, se) in fam_acc.iter().zip(&ses) {
            if !se_is_zero(*se, n) {
                for (mm, x) in m.iter_mut().zip(a) {
                    *mm = mm.max(x.abs() / se);
                }
            }
        }
        family_crit.push(quantile_inverted_cdf(&mut m, q));
        family_se.push(ses);
    }
    BootOut {
        cell_se,
        cell_crit,
        family_se,
        family_crit,
    }
}
