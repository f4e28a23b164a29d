//! Data-side LID estimators (lPCA, MLE), nearest neighbours and the copy test.
//!
//! Conventions, matched to scikit-dimension 0.3.4 (`tests/reference/geometry_reference.py`
//! reads its source; `tests/geometry_estimators.rs` checks pointwise equality):
//!
//! - **Neighbours**: the `k` nearest other points by Euclidean distance, the point itself
//!   excluded (sklearn's `kneighbors()` without `X`), ties to the smaller index. Exact
//!   duplicates of the point are *other* points at distance 0 and count.
//! - **lPCA**: PCA of the `k` neighbours (not the point), centred on their own mean; the
//!   eigenvalues of their covariance, descending, `min(k, D)` of them. `FO`: the number of
//!   eigenvalues strictly above `0.05 λ_1`. `maxgap`: `1 + argmax_i λ_i / λ_{i+1}` (the
//!   first maximum; a ratio over a zero eigenvalue is infinite, a 0/0 ratio is skipped,
//!   as numpy's `nanargmax` does). Eigenvalues below `1e-12 λ_1` are taken as exact zeros
//!   (sklearn's SVD and nalgebra's eigen solver round a zero differently). A
//!   neighbourhood of identical points (`λ_1 = 0`) gives FO 0 (a point mass) and an
//!   undefined maxgap (`None`; skdim raises there). With `D = 2` maxgap is always 1.
//! - **MLE** (Levina-Bickel, skdim's defaults `unbiased=False`, no noise model): with
//!   neighbour distances `R_1 <= ... <= R_k`, `m = (k - 1) / sum_{j=1..k} log(R_k / R_j)`.
//!   A zero distance with `R_k > 0` makes the sum infinite and `m = 0`; all `k`
//!   neighbours at distance 0, or all at the same positive distance (the sum is 0), make
//!   `m` undefined (`None`). The global value is MacKay and Ghahramani's `1 / mean(1 / m)`
//!   over the defined values (skdim's `comb="mle"`); any `m = 0` makes it 0.
//!
//! Neighbour search is brute force (`O(n² D)`), fine for the few thousand points of the
//! workbench, and runs unchanged in wasm.

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

/// The lPCA versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LpcaVersion {
    /// Fukunaga-Olsen: eigenvalues above `alpha λ_1` (alpha 0.05).
    Fo,
    /// The largest ratio of consecutive eigenvalues.
    MaxGap,
}

/// skdim's `alphaFO`.
pub const ALPHA_FO: f64 = 0.05;

/// The `k` nearest neighbours of every point (self excluded), as `(index, distance)`,
/// nearest first, ties to the smaller index. `k` is capped at `n - 1`.
pub fn knn(points: &[f64], dim: usize, k: usize) -> Vec<Vec<(usize, f64)>> {
    let n = points.len().checked_div(dim).unwrap_or(0);
    let k = k.min(n.saturating_sub(1));
    (0..n)
        .map(|i| {
            let p = &points[i * dim..(i + 1) * dim];
            let mut d: Vec<(usize, f64)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (j, dist(p, &points[j * dim..(j + 1) * dim])))
                .collect();
            d.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            d.truncate(k);
            d
        })
        .collect()
}

/// Euclidean distance.
pub fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// The covariance eigenvalues of `rows` (each of `dim` values), centred on their mean,
/// descending, `min(rows, dim)` of them (denominator `rows - 1`).
pub fn pca_eigenvalues(rows: &[&[f64]], dim: usize) -> Vec<f64> {
    let n = rows.len();
    if n < 2 {
        return Vec::new();
    }
    let mut mean = vec![0.0; dim];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(*r) {
            *m += v / n as f64;
        }
    }
    let mut c = DMatrix::<f64>::zeros(dim, dim);
    for r in rows {
        for a in 0..dim {
            let da = r[a] - mean[a];
            for b in a..dim {
                c[(a, b)] += da * (r[b] - mean[b]);
            }
        }
    }
    for a in 0..dim {
        for b in a..dim {
            let v = c[(a, b)] / (n - 1) as f64;
            c[(a, b)] = v;
            c[(b, a)] = v;
        }
    }
    let mut ev: Vec<f64> = SymmetricEigen::new(c).eigenvalues.iter().copied().collect();
    ev.sort_by(|a, b| b.total_cmp(a));
    ev.truncate(n.min(dim));
    let top = ev.first().copied().unwrap_or(0.0).max(0.0);
    for v in ev.iter_mut() {
        if *v <= 1e-12 * top {
            *v = 0.0;
        }
    }
    ev
}

/// lPCA's dimension from descending eigenvalues (`None`: undefined, see the module).
pub fn lpca_from_eigenvalues(ev: &[f64], version: LpcaVersion) -> Option<f64> {
    let top = *ev.first()?;
    match version {
        LpcaVersion::Fo => Some(ev.iter().filter(|&&v| v > ALPHA_FO * top).count() as f64),
        LpcaVersion::MaxGap => {
            let mut best: Option<(usize, f64)> = None;
            for i in 0..ev.len().saturating_sub(1) {
                let (a, b) = (ev[i], ev[i + 1]);
                let g = if b == 0.0 {
                    if a == 0.0 {
                        continue;
                    }
                    f64::INFINITY
                } else {
                    a / b
                };
                if best.is_none_or(|(_, bg)| g > bg) {
                    best = Some((i, g));
                }
            }
            best.map(|(i, _)| (i + 1) as f64)
        }
    }
}

/// Pointwise lPCA with `k` neighbours (self excluded).
pub fn lpca(points: &[f64], dim: usize, k: usize, version: LpcaVersion) -> Vec<Option<f64>> {
    knn(points, dim, k)
        .iter()
        .map(|nb| {
            let rows: Vec<&[f64]> = nb
                .iter()
                .map(|&(j, _)| &points[j * dim..(j + 1) * dim])
                .collect();
            lpca_from_eigenvalues(&pca_eigenvalues(&rows, dim), version)
        })
        .collect()
}

/// Levina-Bickel's `m` from ascending neighbour distances (see the module).
pub fn mle_from_distances(r: &[f64]) -> Option<f64> {
    let k = r.len();
    let rk = *r.last()?;
    if k < 2 || rk <= 0.0 {
        return None;
    }
    let mut s = 0.0;
    for &rj in r {
        if rj <= 0.0 {
            return Some(0.0);
        }
        s += (rk / rj).ln();
    }
    if s <= 0.0 {
        return None;
    }
    Some((k - 1) as f64 / s)
}

/// Pointwise MLE with `k` neighbours (self excluded).
pub fn mle(points: &[f64], dim: usize, k: usize) -> Vec<Option<f64>> {
    knn(points, dim, k)
        .iter()
        .map(|nb| {
            let r: Vec<f64> = nb.iter().map(|&(_, d)| d).collect();
            mle_from_distances(&r)
        })
        .collect()
}

/// MacKay-Ghahramani's aggregate `1 / mean(1 / m)` over the defined values (`None` when
/// none is defined; 0 when any is 0).
pub fn mle_global(m: &[Option<f64>]) -> Option<f64> {
    let d: Vec<f64> = m.iter().flatten().copied().collect();
    if d.is_empty() {
        return None;
    }
    if d.contains(&0.0) {
        return Some(0.0);
    }
    let inv = d.iter().map(|v| 1.0 / v).sum::<f64>() / d.len() as f64;
    Some(1.0 / inv)
}

/// The median nearest-neighbour distance of the *distinct* points (exact duplicates
/// merged first, so a point mass does not pull it to 0); `None` below two distinct
/// points.
pub fn median_spacing(points: &[f64], dim: usize) -> Option<f64> {
    let n = points.len().checked_div(dim).unwrap_or(0);
    let mut distinct: Vec<f64> = Vec::new();
    for i in 0..n {
        let p = &points[i * dim..(i + 1) * dim];
        if !distinct.chunks(dim).any(|q| q == p) {
            distinct.extend_from_slice(p);
        }
    }
    let mut nn: Vec<f64> = knn(&distinct, dim, 1)
        .iter()
        .filter_map(|v| v.first().map(|&(_, d)| d))
        .collect();
    if nn.is_empty() {
        return None;
    }
    nn.sort_by(f64::total_cmp);
    let m = nn.len();
    Some(if m % 2 == 1 {
        nn[m / 2]
    } else {
        0.5 * (nn[m / 2 - 1] + nn[m / 2])
    })
}

/// For each sample, the training point it copies: the nearest one (smallest index on a
/// tie) when closer than `threshold`; `None` otherwise.
pub fn copies(samples: &[f64], train: &[f64], dim: usize, threshold: f64) -> Vec<Option<usize>> {
    samples
        .chunks(dim)
        .map(|s| {
            let mut best: Option<(usize, f64)> = None;
            for (j, t) in train.chunks(dim).enumerate() {
                let d = dist(s, t);
                if best.is_none_or(|(_, bd)| d < bd) {
                    best = Some((j, d));
                }
            }
            best.filter(|&(_, d)| d < threshold).map(|(j, _)| j)
        })
        .collect()
}
