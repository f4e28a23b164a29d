//! The panel: instances, cohorts and outcomes over checkpoints, read from CSV or rows,
//! and its validation (see the parent module's documentation).

use super::*;

/// The CSV header of a panel file, in order.
pub const CSV_HEADER: [&str; 4] = ["instance", "cohort", "checkpoint", "outcome"];

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
