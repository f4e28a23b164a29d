//! Canaries and exposure (the Secret Sharer; METHODS.md section 7): a set of secrets of
//! one format inserted into the training data, each its own number of times
//! ([`CanarySet`], a part of the data spec), and the settings of the exposure
//! measurement ([`ExposureSpec`], an analysis section).
//!
//! A format is literal text with slots: `{d}` is one digit (10 values), `{l}` one
//! lowercase ASCII letter (26 values), and `{{` and `}}` write a brace. The candidate
//! space `R` is every filling of the slots, so `|R| = 10^digits * 26^letters`; candidate
//! `i` fills the slots by the mixed-radix digits of `i`, the last slot fastest, so
//! candidate 0 of `"my PIN is {d} {d} {d} {d}"` is `"my PIN is 0 0 0 0"`.

use serde::{Deserialize, Serialize};

use super::{SpecError, check_range, check_usize, limits};

/// Limits of canaries and exposure.
pub mod exposure_limits {
    /// Characters in a format.
    pub const FORMAT_CHARS: usize = 200;
    /// Slots in a format.
    pub const SLOTS: (usize, usize) = (1, 16);
    /// Canaries in one set.
    pub const CANARIES: (usize, usize) = (1, 16);
    /// The largest space ranked exactly (every candidate scored).
    pub const EXACT_LIMIT: (u64, u64) = (1, 1_000_000);
    /// Candidates sampled for the distribution fit.
    pub const SAMPLES: (usize, usize) = (100, 200_000);
    /// Candidates scored per forward pass.
    pub const BATCH: (usize, usize) = (1, 4096);
    /// Candidates listed above each secret.
    pub const TOP: (usize, usize) = (0, 100);
}

/// One piece of a canary format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text written as is.
    Literal(String),
    /// One digit, `0` to `9`.
    Digit,
    /// One lowercase letter, `a` to `z`.
    Letter,
}

impl Piece {
    /// The values a slot takes (none for a literal).
    pub fn alphabet(&self) -> &'static str {
        match self {
            Piece::Literal(_) => "",
            Piece::Digit => "0123456789",
            Piece::Letter => "abcdefghijklmnopqrstuvwxyz",
        }
    }
}

/// A parsed canary format (see the module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryFormat {
    pieces: Vec<Piece>,
}

impl CanaryFormat {
    /// Parse `format`; errors name what is wrong.
    pub fn parse(format: &str) -> Result<Self, SpecError> {
        let bad = |m: String| SpecError::Inconsistent(format!("data.canaries.format: {m}"));
        if format.chars().count() > exposure_limits::FORMAT_CHARS {
            return Err(bad(format!(
                "longer than {} characters",
                exposure_limits::FORMAT_CHARS
            )));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let slot: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let piece = match slot.as_str() {
                        "d" => Piece::Digit,
                        "l" => Piece::Letter,
                        other => {
                            return Err(bad(format!(
                                "unknown slot {{{other}}}: the slots are {{d}} (a digit) and \
                                 {{l}} (a lowercase letter); write {{{{ for a brace"
                            )));
                        }
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                '}' => return Err(bad("a lone }: write }} for a brace".into())),
                c if c.is_control() => {
                    return Err(bad("control characters are not allowed".into()));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let f = CanaryFormat { pieces };
        let slots = f.slots();
        if slots < exposure_limits::SLOTS.0 || slots > exposure_limits::SLOTS.1 {
            return Err(bad(format!(
                "{slots} slots; a format needs {} to {} ({{d}} or {{l}})",
                exposure_limits::SLOTS.0,
                exposure_limits::SLOTS.1
            )));
        }
        Ok(f)
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Slots in the format.
    pub fn slots(&self) -> usize {
        self.pieces
            .iter()
            .filter(|p| !matches!(p, Piece::Literal(_)))
            .count()
    }

    /// `|R|`, the number of candidates (at most `26^16`, so it fits in a `u128`).
    pub fn candidates(&self) -> u128 {
        self.pieces
            .iter()
            .map(|p| p.alphabet().len().max(1) as u128)
            .product()
    }

    /// `log2 |R|`, the largest exposure.
    pub fn max_exposure(&self) -> f64 {
        self.pieces
            .iter()
            .map(|p| (p.alphabet().len().max(1) as f64).log2())
            .sum()
    }

    /// The literal text before the first slot (every candidate starts with it).
    pub fn prefix(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Literal(s)) => s,
            _ => "",
        }
    }

    /// Candidate `index` (taken modulo `|R|`), written out.
    pub fn render(&self, index: u128) -> String {
        let mut values = Vec::with_capacity(self.slots());
        let mut rest = index % self.candidates();
        for p in self.pieces.iter().rev() {
            let a = p.alphabet();
            if !a.is_empty() {
                let n = a.len() as u128;
                values.push(a.as_bytes()[(rest % n) as usize] as char);
                rest /= n;
            }
        }
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                _ => out.push(values.pop().unwrap_or('?')),
            }
        }
        out
    }

    /// The characters the slots can take (the vocabulary must hold them).
    pub fn slot_characters(&self) -> String {
        let mut s = String::new();
        if self.pieces.contains(&Piece::Digit) {
            s.push_str(Piece::Digit.alphabet());
        }
        if self.pieces.contains(&Piece::Letter) {
            s.push_str(Piece::Letter.alphabet());
        }
        s
    }
}

/// Canaries for exposure: secrets of one format, each inserted its own number of times
/// (METHODS.md section 7). The secrets are drawn from the experiment's seed, all
/// different; canaries are always in training (never held out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySet {
    /// The format (see the module), e.g. `"my PIN is {d} {d} {d} {d}"`.
    pub format: String,
    /// One canary per entry: how many copies of it go into the training data (0 is a
    /// control: a secret drawn but never trained on).
    pub repetitions: Vec<u32>,
}

impl CanarySet {
    /// The demo's set: a 4-digit PIN, six canaries seen 1, 2, 4, 8, 16 and 32 times.
    pub fn pins() -> Self {
        CanarySet {
            format: "my PIN is {d} {d} {d} {d}".into(),
            repetitions: vec![1, 2, 4, 8, 16, 32],
        }
    }

    /// The parsed format.
    pub fn parsed(&self) -> Result<CanaryFormat, SpecError> {
        CanaryFormat::parse(&self.format)
    }

    /// Check the set against the limits.
    pub fn validate(&self) -> Result<(), SpecError> {
        let f = self.parsed()?;
        check_usize(
            "data.canaries.repetitions (canaries)",
            self.repetitions.len(),
            exposure_limits::CANARIES,
        )?;
        for &r in &self.repetitions {
            check_range("data.canaries.repetitions", r, limits::CANARY_REPEATS)?;
        }
        if f.candidates() < self.repetitions.len() as u128 {
            return Err(SpecError::Inconsistent(format!(
                "data.canaries: {} canaries need as many different secrets, but the format \
                 has only {} candidates",
                self.repetitions.len(),
                f.candidates()
            )));
        }
        Ok(())
    }
}

/// How the secrets' ranks are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExposureMethod {
    /// Exact when `|R|` is at most `exact_limit`, extrapolated otherwise.
    #[default]
    Auto,
    /// Score every candidate (refused above `exact_limit`).
    Exact,
    /// Fit a skew-normal to the log-perplexities of sampled candidates.
    Extrapolated,
}

impl ExposureMethod {
    /// The name in files.
    pub fn key(self) -> &'static str {
        match self {
            ExposureMethod::Auto => "auto",
            ExposureMethod::Exact => "exact",
            ExposureMethod::Extrapolated => "extrapolated",
        }
    }
}

/// Settings of the exposure measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureSpec {
    /// Exact or extrapolated (default auto).
    #[serde(default)]
    pub method: ExposureMethod,
    /// The largest space ranked exactly (default 100,000 candidates).
    #[serde(default = "default_exact_limit")]
    pub exact_limit: u64,
    /// Candidates sampled (uniformly, with replacement) for the extrapolation
    /// (default 10,000).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Candidates scored per forward pass (default 512).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Candidates listed above each secret (default 10).
    #[serde(default = "default_top")]
    pub top: usize,
}

fn default_exact_limit() -> u64 {
    100_000
}
fn default_samples() -> usize {
    10_000
}
fn default_batch() -> usize {
    512
}
fn default_top() -> usize {
    10
}

impl Default for ExposureSpec {
    fn default() -> Self {
        ExposureSpec {
            method: ExposureMethod::Auto,
            exact_limit: default_exact_limit(),
            samples: default_samples(),
            batch: default_batch(),
            top: default_top(),
        }
    }
}

impl ExposureSpec {
    /// Check the settings against the limits.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_range(
            "exposure.exact_limit",
            self.exact_limit as f64,
            (
                exposure_limits::EXACT_LIMIT.0 as f64,
                exposure_limits::EXACT_LIMIT.1 as f64,
            ),
        )?;
        check_usize("exposure.samples", self.samples, exposure_limits::SAMPLES)?;
        check_usize("exposure.batch", self.batch, exposure_limits::BATCH)?;
        check_usize("exposure.top", self.top, exposure_limits::TOP)?;
        Ok(())
    }

    /// Whether a space of `candidates` is ranked exactly.
    pub fn exact_for(&self, candidates: u128) -> Result<bool, SpecError> {
        let fits = candidates <= self.exact_limit as u128;
        match self.method {
            ExposureMethod::Auto => Ok(fits),
            ExposureMethod::Extrapolated => Ok(false),
            ExposureMethod::Exact if fits => Ok(true),
            ExposureMethod::Exact => Err(SpecError::Inconsistent(format!(
                "exposure.method is exact, but the format has {candidates} candidates, more \
                 than exposure.exact_limit = {}",
                self.exact_limit
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_render_and_count() {
        let f = CanaryFormat::parse("my PIN is {d} {d} {d} {d}").unwrap();
        assert_eq!(f.slots(), 4);
        assert_eq!(f.candidates(), 10_000);
        assert!((f.max_exposure() - 10_000f64.log2()).abs() < 1e-12);
        assert_eq!(f.prefix(), "my PIN is ");
        assert_eq!(f.render(0), "my PIN is 0 0 0 0");
        assert_eq!(f.render(4719), "my PIN is 4 7 1 9");
        assert_eq!(f.render(9999), "my PIN is 9 9 9 9");
        assert_eq!(f.render(10_000), "my PIN is 0 0 0 0", "modulo |R|");
        let g = CanaryFormat::parse("{l}{d}-{{x}}").unwrap();
        assert_eq!(g.candidates(), 260);
        assert_eq!(g.prefix(), "");
        assert_eq!(g.render(0), "a0-{x}");
        assert_eq!(g.render(259), "z9-{x}");
        assert_eq!(g.render(13), "b3-{x}");
        assert_eq!(g.slot_characters().len(), 36);
    }

    #[test]
    fn bad_formats_say_why() {
        for (f, msg) in [
            ("no slots", "0 slots"),
            ("{x}", "unknown slot {x}"),
            ("a } b {d}", "lone }"),
            ("tab\t{d}", "control"),
            (&"{d}".repeat(17), "17 slots"),
            (&format!("{}{{d}}", "a".repeat(200)), "longer than 200"),
        ] {
            let e = CanaryFormat::parse(f).unwrap_err().to_string();
            assert!(e.contains(msg), "{f:?}: {e}");
        }
        let set = CanarySet {
            format: "{d}".into(),
            repetitions: vec![1; 11],
        };
        assert!(set.validate().unwrap_err().to_string().contains("only 10"));
        let set = CanarySet {
            format: "{d}".into(),
            repetitions: vec![],
        };
        assert!(set.validate().is_err());
        assert!(CanarySet::pins().validate().is_ok());
    }

    #[test]
    fn methods_choose_exact_or_refuse() {
        let s = ExposureSpec::default();
        assert_eq!(s.exact_for(10_000), Ok(true));
        assert_eq!(s.exact_for(1_000_000), Ok(false));
        let e = ExposureSpec {
            method: ExposureMethod::Exact,
            ..s
        };
        assert!(e.exact_for(1_000_000).is_err());
        let x = ExposureSpec {
            method: ExposureMethod::Extrapolated,
            ..s
        };
        assert_eq!(x.exact_for(10), Ok(false));
    }
}
