//! How far the methods agree: Spearman's rank correlation of their scores, per test text.

use serde::{Deserialize, Serialize};

use super::{InfluenceResult, Method};

/// Average ranks (1-based; ties share the mean of their ranks).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of `a` and `b` (Pearson's on average ranks); `None` for
/// fewer than two pairs, different lengths or a constant side.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// How far the methods agree: for every pair, Spearman's rank correlation of their
/// scores over the training texts, averaged over the test texts where it is defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The methods (rows and columns).
    pub methods: Vec<Method>,
    /// `matrix[i][j]`: mean rank correlation of methods `i` and `j` (`None` where no
    /// test text defines it).
    pub matrix: Vec<Vec<Option<f64>>>,
}

/// The rank agreement of the methods of `result`.
pub fn agreement(result: &InfluenceResult) -> Agreement {
    let methods = result.settings.methods.clone();
    let matrix = methods
        .iter()
        .map(|&a| {
            methods
                .iter()
                .map(|&b| {
                    let vals: Vec<f64> = result
                        .tests
                        .iter()
                        .filter_map(|t| spearman(&t.method(a)?.scores, &t.method(b)?.scores))
                        .collect();
                    (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
                })
                .collect()
        })
        .collect();
    Agreement { methods, matrix }
}

// ----------------------------------------------------------------------------------
// Case deletion.
