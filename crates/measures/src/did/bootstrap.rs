//! The multiplier bootstrap: simultaneous bands for the cells and the aggregates.

use super::quantile::{iqr_se, quantile_inverted_cdf};
use super::*;

/// The bootstrap's standard errors and critical values: per cell, and per family.
pub(super) struct BootOut {
    pub(super) cell_se: Vec<f64>,
    pub(super) cell_crit: f64,
    pub(super) family_se: Vec<Vec<f64>>,
    pub(super) family_crit: Vec<f64>,
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
pub(super) fn bootstrap(
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
