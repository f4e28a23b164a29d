//! The memorisation class of a training point, from `LID_theta` (the model's, FLIPD)
//! against `LID_*` (the data's: the true LID or lPCA).
//!
//! The paper (Ross et al., ICLR 2025) gives no numbers; Mnemo's rule, with the spec's
//! `small` (default 0.5) and `margin` (default 0.5), checked in this order:
//!
//! 1. either value undefined: [`MemClass::Undefined`];
//! 2. `LID_theta < small` and `LID_* < small`: **DD-Mem** (data-driven: a point mass or a
//!    duplicated point, which the model rightly reproduces);
//! 3. `LID_theta < LID_* - margin`: **OD-Mem** (overfitting-driven: the model's manifold
//!    has collapsed below the data's at that point);
//! 4. otherwise not memorised.

use serde::{Deserialize, Serialize};

/// How a training point is memorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemClass {
    /// Overfitting-driven memorisation: `LID_theta < LID_* - margin`.
    OdMem,
    /// Data-driven memorisation: both below `small`.
    DdMem,
    /// Neither.
    NotMemorised,
    /// A value was undefined.
    Undefined,
}

impl MemClass {
    /// Every class, in legend order.
    pub const ALL: [MemClass; 4] = [
        MemClass::OdMem,
        MemClass::DdMem,
        MemClass::NotMemorised,
        MemClass::Undefined,
    ];

    /// The name in files.
    pub fn key(self) -> &'static str {
        match self {
            MemClass::OdMem => "od_mem",
            MemClass::DdMem => "dd_mem",
            MemClass::NotMemorised => "not_memorised",
            MemClass::Undefined => "undefined",
        }
    }

    /// The name in charts.
    pub fn label(self) -> &'static str {
        match self {
            MemClass::OdMem => "OD-Mem",
            MemClass::DdMem => "DD-Mem",
            MemClass::NotMemorised => "not memorised",
            MemClass::Undefined => "undefined",
        }
    }
}

/// The class of a point (see the module).
pub fn classify(
    lid_theta: Option<f64>,
    lid_star: Option<f64>,
    small: f64,
    margin: f64,
) -> MemClass {
    match (lid_theta, lid_star) {
        (Some(th), Some(st)) if th.is_finite() && st.is_finite() => {
            if th < small && st < small {
                MemClass::DdMem
            } else if th < st - margin {
                MemClass::OdMem
            } else {
                MemClass::NotMemorised
            }
        }
        _ => MemClass::Undefined,
    }
}
