//! Tests of the difference-in-differences estimator (`mnemo_measures::did`).
//!
//! - reference values from the `differences` Python package (fixtures made by
//!   `tests/reference/did_reference.py`; this test never runs Python),
//! - an independent, literal implementation of the METHODS.md influence functions,
//! - a hand-computed panel,
//! - coverage of the bootstrap bands and the analytic intervals on simulated panels,
//! - recovery of a known effect and placebo cells near zero,
//! - every malformed-panel error,
//! - determinism, and (ignored) the paper-size timing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use mnemo_measures::did::{
    DidError, DidOptions, DidResult, Multiplier, Panel, PanelError, estimate, normal_quantile,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

// -------------------------------------------------------------------------------------
// helpers
// -------------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/did")
}

fn no_boot() -> DidOptions {
    DidOptions {
        draws: 0,
        ..DidOptions::default()
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A simulated panel: outcome = instance level + common trend + noise, minus `effect(g, c)`
/// for trained instances at `c >= g`. Cohort and instance order are interleaved so the
/// estimator's regrouping is exercised.
fn simulate(
    seed: u64,
    cohorts: &[(usize, usize)],
    never: usize,
    checkpoints: usize,
    noise: f64,
    effect: impl Fn(usize, usize) -> f64,
) -> Panel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let trend: Vec<f64> = (0..checkpoints)
        .scan(0.0, |acc, _| {
            *acc += -0.3 + 0.2 * normal(&mut rng);
            Some(*acc)
        })
        .collect();
    let mut groups: Vec<Option<usize>> = Vec::new();
    for &(g, n) in cohorts {
        groups.extend(std::iter::repeat_n(Some(g), n));
    }
    groups.extend(std::iter::repeat_n(None, never));
    // deterministic shuffle
    for i in (1..groups.len()).rev() {
        let j = rng.random_range(0..=i);
        groups.swap(i, j);
    }
    let mut instances = Vec::new();
    let mut outcomes = Vec::new();
    for (k, g) in groups.iter().enumerate() {
        instances.push(format!("x{k}"));
        let level = 5.0 + normal(&mut rng);
        for (c, tr) in trend.iter().enumerate() {
            let mut y = level + tr + noise * normal(&mut rng);
            if let Some(g) = *g
                && c >= g
            {
                y -= effect(g, c);
            }
            outcomes.push(y);
        }
    }
    Panel {
        instances,
        cohorts: groups,
        checkpoints,
        outcomes,
    }
}

fn load_fixture(name: &str) -> (Panel, Value) {
    let dir = fixtures();
    let csv = std::fs::File::open(dir.join(format!("panel_{name}.csv"))).unwrap();
    let panel = Panel::from_csv(csv).unwrap();
    let text = std::fs::read_to_string(dir.join(format!("reference_{name}.json"))).unwrap();
    (panel, serde_json::from_str(&text).unwrap())
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

// -------------------------------------------------------------------------------------
// a. reference values from `differences`
// -------------------------------------------------------------------------------------

#[test]
fn matches_differences_reference_to_1e9() {
    let mut max_diff: f64 = 0.0;
    let mut track = |a: f64, b: f64, what: &str| {
        let d = (a - b).abs();
        assert!(
            d <= 1e-9,
            "{what}: mnemo {a} vs differences {b} (diff {d:e})"
        );
        max_diff = max_diff.max(d);
    };
    for name in ["a", "b", "c"] {
        let (panel, reference) = load_fixture(name);
        // the bootstrap does not change ATT or the analytic SE: check both ways
        for options in [no_boot(), DidOptions::default()] {
            let res = estimate(&panel, &options).unwrap();
            let cells = reference["cells"].as_array().unwrap();
            assert_eq!(res.cells.len(), cells.len(), "panel {name}: cell count");
            for (ours, theirs) in res.cells.iter().zip(cells) {
                assert_eq!(ours.cohort as u64, theirs["cohort"].as_u64().unwrap());
                assert_eq!(
                    ours.checkpoint as u64,
                    theirs["checkpoint"].as_u64().unwrap()
                );
                assert_eq!(ours.base as u64, theirs["base"].as_u64().unwrap());
                let at = format!("panel {name} cell ({}, {})", ours.cohort, ours.checkpoint);
                track(ours.att, f(&theirs["att"]), &format!("{at} att"));
                track(ours.se, f(&theirs["se"]), &format!("{at} se"));
                assert_eq!(ours.memorisation, -ours.att);
            }
            for (family, ours) in [
                ("event", &res.event),
                ("cohort", &res.by_cohort),
                ("time", &res.by_checkpoint),
            ] {
                let theirs = reference[family].as_array().unwrap();
                assert_eq!(ours.len(), theirs.len(), "panel {name}: {family} count");
                for (o, t) in ours.iter().zip(theirs) {
                    assert_eq!(
                        o.key,
                        t["key"].as_i64().unwrap(),
                        "panel {name} {family} key"
                    );
                    let at = format!("panel {name} {family} {}", o.key);
                    track(o.att, f(&t["att"]), &format!("{at} att"));
                    track(o.se, f(&t["se"]), &format!("{at} se"));
                }
            }
            let simple = &reference["simple"][0];
            track(res.overall.att, f(&simple["att"]), "overall att");
            track(res.overall.se, f(&simple["se"]), "overall se");
        }
    }
    println!("max |mnemo - differences| over ATT and SE: {max_diff:e}");
}

// -------------------------------------------------------------------------------------
// an independent, literal implementation of METHODS.md section 1
// -------------------------------------------------------------------------------------

struct Naive {
    att: BTreeMap<(usize, usize), f64>,
    /// psi over all N instances, per cell
    psi: BTreeMap<(usize, usize), Vec<f64>>,
}

fn naive(panel: &Panel) -> Naive {
    let n = panel.instances.len();
    let c = panel.checkpoints;
    let y = |i: usize, t: usize| panel.outcomes[i * c + t];
    let mut gs: Vec<usize> = panel.cohorts.iter().flatten().copied().collect();
    gs.sort();
    gs.dedup();
    let mut att = BTreeMap::new();
    let mut psi = BTreeMap::new();
    for &g in &gs {
        for t in 1..c {
            let b = if t >= g { g - 1 } else { t - 1 };
            let tr: Vec<usize> = (0..n).filter(|&i| panel.cohorts[i] == Some(g)).collect();
            let co: Vec<usize> = (0..n).filter(|&i| panel.cohorts[i].is_none()).collect();
            let m = |set: &[usize]| {
                set.iter().map(|&i| y(i, t) - y(i, b)).sum::<f64>() / set.len() as f64
            };
            let (mt, mc) = (m(&tr), m(&co));
            let pg = tr.len() as f64 / n as f64;
            let pc = co.len() as f64 / n as f64;
            let p: Vec<f64> = (0..n)
                .map(|i| {
                    let d = y(i, t) - y(i, b);
                    match panel.cohorts[i] {
                        Some(h) if h == g => (d - mt) / pg,
                        None => -(d - mc) / pc,
                        _ => 0.0,
                    }
                })
                .collect();
            att.insert((g, t), mt - mc);
            psi.insert((g, t), p);
        }
    }
    Naive { att, psi }
}

/// `theta` and SE of an aggregate, straight from the METHODS.md formulas (`shares`:
/// cohort-size weights with the omega term; otherwise equal weights, no omega).
fn naive_aggregate(
    panel: &Panel,
    nv: &Naive,
    cells: &[(usize, usize)],
    shares: bool,
) -> (f64, f64) {
    let n = panel.instances.len();
    let nf = n as f64;
    let p: Vec<f64> = cells
        .iter()
        .map(|&(g, _)| panel.cohorts.iter().filter(|h| **h == Some(g)).count() as f64 / nf)
        .collect();
    let s: f64 = p.iter().sum();
    let w: Vec<f64> = if shares {
        p.iter().map(|x| x / s).collect()
    } else {
        vec![1.0 / cells.len() as f64; cells.len()]
    };
    let theta: f64 = cells.iter().zip(&w).map(|(k, w)| w * nv.att[k]).sum();
    let mut ss = 0.0;
    for i in 0..n {
        let mut v = 0.0;
        for (k, cell) in cells.iter().enumerate() {
            v += w[k] * nv.psi[cell][i];
        }
        if shares {
            let dsum: f64 = cells
                .iter()
                .zip(&p)
                .map(|(&(g, _), pj)| {
                    (if panel.cohorts[i] == Some(g) {
                        1.0
                    } else {
                        0.0
                    }) - pj
                })
                .sum();
            for (k, &(g, t)) in cells.iter().enumerate() {
                let d = if panel.cohorts[i] == Some(g) {
                    1.0
                } else {
                    0.0
                };
                let omega = (d - p[k]) / s - p[k] * dsum / (s * s);
                v += nv.att[&(g, t)] * omega;
            }
        }
        ss += v * v;
    }
    // SE = sqrt(mean_i psi^2 / N)
    (theta, (ss / nf / nf).sqrt())
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn matches_literal_methods_formulas_on_random_panels() {
    for seed in 0..5 {
        let panel = simulate(
            100 + seed,
            &[(1, 7), (2, 3), (4, 12), (5, 2)],
            9,
            7,
            0.7,
            |g, c| 0.2 * g as f64 + 0.1 * c as f64,
        );
        let res = estimate(&panel, &no_boot()).unwrap();
        let nv = naive(&panel);
        let nf = panel.instances.len() as f64;
        for cell in &res.cells {
            let k = (cell.cohort, cell.checkpoint);
            assert!(close(cell.att, nv.att[&k], 1e-12));
            let se = nv.psi[&k].iter().map(|x| x * x).sum::<f64>().sqrt() / nf;
            assert!(close(cell.se, se, 1e-12), "cell {k:?}: {} vs {se}", cell.se);
        }
        let cohorts: Vec<usize> = res.cohorts.iter().map(|c| c.cohort).collect();
        let c = panel.checkpoints;
        for agg in &res.event {
            let cells: Vec<(usize, usize)> = cohorts
                .iter()
                .filter_map(|&g| {
                    let t = g as i64 + agg.key;
                    (t >= 1 && t < c as i64).then_some((g, t as usize))
                })
                .collect();
            let (theta, se) = naive_aggregate(&panel, &nv, &cells, true);
            assert!(close(agg.att, theta, 1e-12), "event {}", agg.key);
            assert!(
                close(agg.se, se, 1e-12),
                "event {}: {} vs {se}",
                agg.key,
                agg.se
            );
        }
        for agg in &res.by_checkpoint {
            let t = agg.key as usize;
            let cells: Vec<(usize, usize)> = cohorts
                .iter()
                .filter(|&&g| g <= t)
                .map(|&g| (g, t))
                .collect();
            let (theta, se) = naive_aggregate(&panel, &nv, &cells, true);
            assert!(close(agg.att, theta, 1e-12) && close(agg.se, se, 1e-12));
        }
        for agg in &res.by_cohort {
            let g = agg.key as usize;
            let cells: Vec<(usize, usize)> = (g..c).map(|t| (g, t)).collect();
            let (theta, se) = naive_aggregate(&panel, &nv, &cells, false);
            assert!(close(agg.att, theta, 1e-12) && close(agg.se, se, 1e-12));
        }
        let post: Vec<(usize, usize)> = cohorts
            .iter()
            .flat_map(|&g| (g..c).map(move |t| (g, t)))
            .collect();
        let (theta, se) = naive_aggregate(&panel, &nv, &post, true);
        assert!(close(res.overall.att, theta, 1e-12) && close(res.overall.se, se, 1e-12));
    }
}

// -------------------------------------------------------------------------------------
// e. a hand-computed panel
// -------------------------------------------------------------------------------------

fn hand_panel() -> Panel {
    // checkpoints 0, 1, 2; cohort 1 = {a, b}, cohort 2 = {c, d}, never trained = {e, f}
    let data: [(&str, Option<usize>, [f64; 3]); 6] = [
        ("a", Some(1), [1.0, 3.0, 4.0]),
        ("b", Some(1), [2.0, 2.0, 5.0]),
        ("c", Some(2), [0.0, 1.0, 5.0]),
        ("d", Some(2), [1.0, 1.0, 2.0]),
        ("e", None, [0.0, 1.0, 1.0]),
        ("f", None, [2.0, 2.0, 4.0]),
    ];
    let rows = data.iter().flat_map(|(name, g, ys)| {
        ys.iter()
            .enumerate()
            .map(move |(t, y)| (name.to_string(), *g, t, *y))
    });
    Panel::from_rows(rows).unwrap()
}

#[test]
fn hand_computed_two_cohort_panel() {
    let res = estimate(&hand_panel(), &no_boot()).unwrap();
    // ATT(1,1): treated changes {2, 0} (mean 1), control {1, 0} (mean 0.5) -> 0.5;
    //   SE^2 = var{2,0}/2 + var{1,0}/2 = 1/2 + 1/8 (variances with divisor n)
    // ATT(1,2): base 0: treated {3, 3}, control {1, 2} -> 1.5; SE^2 = 0 + 1/8
    // ATT(2,1): placebo, base 0: treated {1, 0}, control {1, 0} -> 0; SE^2 = 1/8 + 1/8
    // ATT(2,2): base 1: treated {4, 1}, control {0, 2} -> 1.5; SE^2 = 2.25/2 + 1/2
    let expected = [
        (1, 1, 0, 0.5, 0.625),
        (1, 2, 0, 1.5, 0.125),
        (2, 1, 0, 0.0, 0.25),
        (2, 2, 1, 1.5, 1.625),
    ];
    assert_eq!(res.cells.len(), 4);
    for (cell, (g, c, b, att, var)) in res.cells.iter().zip(expected) {
        assert_eq!((cell.cohort, cell.checkpoint, cell.base), (g, c, b));
        assert!(
            (cell.att - att).abs() < 1e-14,
            "ATT({g},{c}) = {}",
            cell.att
        );
        assert!(
            (cell.se - f64::sqrt(var)).abs() < 1e-14,
            "SE({g},{c}) = {}",
            cell.se
        );
    }
    // event 0: cells (1,1) and (2,2), equal cohort sizes: theta = 1.0. With the omega
    // term, phi = (0.125, -0.375, 0.5, -0.25) for a..d and (0.125, -0.125) for e, f:
    // SE^2 = sum phi^2 = 0.5.
    let e: BTreeMap<i64, (f64, f64)> = res.event.iter().map(|a| (a.key, (a.att, a.se))).collect();
    assert_eq!(e.keys().copied().collect::<Vec<_>>(), vec![-1, 0, 1]);
    assert!((e[&0].0 - 1.0).abs() < 1e-14 && (e[&0].1 - 0.5f64.sqrt()).abs() < 1e-14);
    assert!((e[&1].0 - 1.5).abs() < 1e-14 && (e[&1].1 - 0.125f64.sqrt()).abs() < 1e-14);
    assert!(e[&-1].0.abs() < 1e-14 && (e[&-1].1 - 0.5).abs() < 1e-14);
    // instantaneous: cells (1,1), (2,2); residual: (1,2), (2,2)
    let inst: Vec<(usize, usize)> = res
        .instantaneous
        .iter()
        .map(|c| (c.cohort, c.checkpoint))
        .collect();
    assert_eq!(inst, vec![(1, 1), (2, 2)]);
    let resid: Vec<(usize, usize)> = res
        .residual
        .iter()
        .map(|c| (c.cohort, c.checkpoint))
        .collect();
    assert_eq!(resid, vec![(1, 2), (2, 2)]);
    // simple differences: mean_g Y_c - mean_inf Y_c at c >= g
    // (1,1): 2.5 - 1.5 = 1; (1,2): 4.5 - 2.5 = 2; (2,2): 3.5 - 2.5 = 1
    let simple: Vec<(usize, usize, f64)> = res
        .simple
        .iter()
        .map(|s| (s.cohort, s.checkpoint, s.difference))
        .collect();
    assert_eq!(simple, vec![(1, 1, 1.0), (1, 2, 2.0), (2, 2, 1.0)]);
    // SE of (1,1): var{3,2}/2 + var{1,2}/2 = 0.125 + 0.125
    assert!((res.simple[0].se - 0.25f64.sqrt()).abs() < 1e-14);
    assert_eq!(res.simple[0].memorisation, -1.0);
    assert_eq!(
        (res.cohorts.len(), res.never_trained, res.instances),
        (2, 2, 6)
    );
}

#[test]
fn normal_quantiles() {
    assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-15);
    assert!((normal_quantile(0.75) - 0.674_489_750_196_081_7).abs() < 1e-15);
    assert!((normal_quantile(0.5)).abs() < 1e-300);
    assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-12);
    assert!((normal_quantile(0.025) + 1.959_963_984_540_054).abs() < 1e-15);
}

// -------------------------------------------------------------------------------------
// bootstrap: agreement with the analytic SE, determinism, options
// -------------------------------------------------------------------------------------

#[test]
fn bootstrap_se_agrees_with_analytic_and_is_deterministic() {
    let panel = simulate(7, &[(2, 40), (3, 40), (5, 40)], 80, 7, 0.5, |_, _| 0.3);
    let opts = DidOptions {
        draws: 4000,
        seed: 42,
        ..DidOptions::default()
    };
    let res = estimate(&panel, &opts).unwrap();
    for cell in &res.cells {
        let b = cell.boot_se.unwrap();
        assert!(
            (b / cell.se - 1.0).abs() < 0.12,
            "cell ({}, {}): boot {b} vs {}",
            cell.cohort,
            cell.checkpoint,
            cell.se
        );
        assert!((cell.lower - (cell.att - res.critical_value * b)).abs() < 1e-12);
        assert_eq!(cell.significant, cell.lower > 0.0 || cell.upper < 0.0);
    }
    for agg in res
        .event
        .iter()
        .chain(&res.by_cohort)
        .chain(&res.by_checkpoint)
    {
        let b = agg.boot_se.unwrap();
        assert!(
            (b / agg.se - 1.0).abs() < 0.12,
            "aggregate {}: boot {b} vs {}",
            agg.key,
            agg.se
        );
    }
    // simultaneous critical values exceed the pointwise one and stay plausible
    let z = normal_quantile(0.975);
    assert!(
        res.critical_value > z && res.critical_value < 4.5,
        "{}",
        res.critical_value
    );
    assert!(res.event_critical_value > z && res.event_critical_value < 4.0);
    // the same seed gives the same numbers whatever the number of threads
    for threads in [1, 3] {
        let other = estimate(
            &panel,
            &DidOptions {
                threads,
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!(
            DidResult {
                options: opts.clone(),
                ..other
            },
            res
        );
    }
    // another seed gives other draws but the same ATT and analytic SE
    let other = estimate(
        &panel,
        &DidOptions {
            seed: 43,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_ne!(other.critical_value, res.critical_value);
    assert_eq!(other.cells[0].att, res.cells[0].att);
    assert_eq!(other.cells[0].se, res.cells[0].se);
    // Mammen weights work too
    let mammen = estimate(
        &panel,
        &DidOptions {
            multiplier: Multiplier::Mammen,
            ..opts.clone()
        },
    )
    .unwrap();
    for cell in &mammen.cells {
        assert!((cell.boot_se.unwrap() / cell.se - 1.0).abs() < 0.12);
    }
    // the result serialises
    let json = serde_json::to_string(&res).unwrap();
    let back: DidResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back.cells.len(), res.cells.len());
}

#[test]
fn no_bootstrap_gives_pointwise_analytic_intervals() {
    let res = estimate(&hand_panel(), &no_boot()).unwrap();
    let z = normal_quantile(0.975);
    assert_eq!(res.critical_value, z);
    for cell in &res.cells {
        assert!(cell.boot_se.is_none());
        assert!((cell.upper - (cell.att + z * cell.se)).abs() < 1e-14);
    }
}

#[test]
fn degenerate_and_minimal_panels_give_finite_numbers() {
    // constant outcomes: every SE is zero; nothing is NaN and nothing is significant
    let rows = ["a", "b", "n1", "n2"].into_iter().flat_map(|name| {
        let g = if name.starts_with('n') { None } else { Some(1) };
        (0..3).map(move |t| (name.to_string(), g, t, 2.0))
    });
    let panel = Panel::from_rows(rows).unwrap();
    let res = estimate(&panel, &DidOptions::default()).unwrap();
    let json = serde_json::to_string(&res).unwrap();
    assert!(!json.contains("null"), "{json}");
    for cell in &res.cells {
        assert_eq!(
            (cell.att, cell.se, cell.lower, cell.upper),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert!(!cell.significant);
    }
    // the smallest valid panel: one cohort at checkpoint 1, two checkpoints
    let panel = parse(GOOD).unwrap();
    let res = estimate(&panel, &DidOptions::default()).unwrap();
    assert_eq!(res.cells.len(), 1);
    assert_eq!(res.event.len(), 1);
    assert_eq!(res.instantaneous, res.residual);
    // treated changes {1, 1}, never-trained changes {0.1, 0.4}
    assert!((res.cells[0].att - (1.0 - (0.1 + 0.4) / 2.0)).abs() < 1e-12);
}

#[test]
fn invalid_options_are_errors() {
    let panel = hand_panel();
    for alpha in [0.0, 1.0, -0.1, f64::NAN] {
        let err = estimate(&panel, &DidOptions { alpha, ..no_boot() }).unwrap_err();
        assert!(
            matches!(
                err,
                DidError::InvalidOption {
                    option: "alpha",
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = estimate(
        &panel,
        &DidOptions {
            draws: 1_000_000,
            ..no_boot()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("draws"), "{err}");
}

// -------------------------------------------------------------------------------------
// b. coverage, c. recovery and placebo
// -------------------------------------------------------------------------------------

#[test]
fn bands_cover_a_known_effect_at_the_nominal_rate() {
    let seeds = 200;
    let effect = 0.3;
    let mut simultaneous = 0;
    let mut event_simultaneous = 0;
    let mut pointwise: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for seed in 0..seeds {
        let panel = simulate(
            1000 + seed,
            &[(2, 40), (3, 40), (4, 40)],
            80,
            6,
            0.5,
            |_, _| effect,
        );
        let res = estimate(
            &panel,
            &DidOptions {
                seed,
                ..DidOptions::default()
            },
        )
        .unwrap();
        let truth = |event: i64| if event >= 0 { -effect } else { 0.0 };
        if res
            .cells
            .iter()
            .all(|c| c.lower <= truth(c.event) && truth(c.event) <= c.upper)
        {
            simultaneous += 1;
        }
        if res
            .event
            .iter()
            .all(|a| a.lower <= truth(a.key) && truth(a.key) <= a.upper)
        {
            event_simultaneous += 1;
        }
        let z = normal_quantile(0.975);
        for c in &res.cells {
            if (c.att - truth(c.event)).abs() <= z * c.se {
                *pointwise.entry((c.cohort, c.checkpoint)).or_default() += 1;
            }
        }
    }
    let rate = simultaneous as f64 / seeds as f64;
    let event_rate = event_simultaneous as f64 / seeds as f64;
    let total: usize = pointwise.values().sum();
    let point_rate = total as f64 / (seeds as usize * pointwise.len()) as f64;
    println!(
        "simultaneous cell coverage {rate}, event-band coverage {event_rate}, pointwise {point_rate}"
    );
    assert!(
        (0.90..=0.99).contains(&rate),
        "simultaneous coverage {rate}"
    );
    assert!(
        (0.90..=0.99).contains(&event_rate),
        "event-band coverage {event_rate}"
    );
    assert!(
        (0.93..=0.97).contains(&point_rate),
        "pointwise coverage {point_rate}"
    );
    for (cell, hits) in &pointwise {
        let r = *hits as f64 / seeds as f64;
        assert!(
            (0.88..=1.0).contains(&r),
            "cell {cell:?}: pointwise coverage {r}"
        );
    }
}

#[test]
fn recovers_a_known_effect_and_placebos_are_near_zero() {
    // memorisation that decays with time since training
    let effect = |g: usize, c: usize| 0.8 * 0.7f64.powi((c - g) as i32);
    let panel = simulate(5, &[(2, 100), (4, 100), (6, 100)], 300, 9, 0.3, effect);
    let res = estimate(&panel, &DidOptions::default()).unwrap();
    for cell in &res.cells {
        let truth = if cell.checkpoint >= cell.cohort {
            -effect(cell.cohort, cell.checkpoint)
        } else {
            0.0
        };
        assert!(
            cell.lower <= truth && truth <= cell.upper,
            "cell ({}, {}): {} not in [{}, {}]",
            cell.cohort,
            cell.checkpoint,
            truth,
            cell.lower,
            cell.upper
        );
        if cell.event < 0 {
            assert!(
                cell.att.abs() < 4.0 * cell.se,
                "placebo ({}, {})",
                cell.cohort,
                cell.checkpoint
            );
            assert!(cell.att.abs() < 0.15);
        } else {
            assert!((cell.memorisation - effect(cell.cohort, cell.checkpoint)).abs() < 0.15);
        }
    }
    // instantaneous memorisation is the full effect 0.8 and significant
    for cell in &res.instantaneous {
        assert!((cell.memorisation - 0.8).abs() < 0.1 && cell.significant);
    }
    // the persistent curve decays
    for agg in res.event.iter().filter(|a| a.key >= 0) {
        let truth = 0.8 * 0.7f64.powi(agg.key as i32);
        assert!(
            agg.lower <= -truth && -truth <= agg.upper,
            "event {}",
            agg.key
        );
    }
    // the naive simple difference is biased here only by noise (levels are random), but
    // it does not remove instance levels: its SE is far larger than the DiD one
    let did_se = res.cells.iter().find(|c| c.event == 0).unwrap().se;
    assert!(res.simple[0].se > 2.0 * did_se);
}

// -------------------------------------------------------------------------------------
// d. malformed panels
// -------------------------------------------------------------------------------------

const GOOD: &str = "instance,cohort,checkpoint,outcome
a,1,0,1.0
a,1,1,2.0
b,1,0,1.5
b,1,1,2.5
n1,,0,1.0
n1,,1,1.1
n2,,0,0.9
n2,,1,1.3
";

fn parse(text: &str) -> Result<Panel, PanelError> {
    Panel::from_csv(text.as_bytes())
}

/// `GOOD` with line `line` (1-based) replaced.
fn with_line(line: usize, replacement: &str) -> String {
    GOOD.lines()
        .enumerate()
        .map(|(k, l)| if k + 1 == line { replacement } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn err_msg(text: &str) -> String {
    let err = parse(text).unwrap_err();
    err.to_string()
}

#[test]
fn good_csv_parses_and_round_trips() {
    let panel = parse(GOOD).unwrap();
    assert_eq!(panel.instances, vec!["a", "b", "n1", "n2"]);
    assert_eq!(panel.cohorts, vec![Some(1), Some(1), None, None]);
    assert_eq!(panel.checkpoints, 2);
    assert_eq!(panel.outcome(1, 1), Some(2.5));
    let mut out = Vec::new();
    panel.write_csv(&mut out).unwrap();
    assert_eq!(Panel::from_csv(out.as_slice()).unwrap(), panel);
    // rows in any order, pandas-style "1.0" cohorts, spaces, a BOM and blank lines
    let shuffled = "\u{feff}instance, cohort,checkpoint,outcome\nn2,,1,1.3\n\nb,1.0,1,2.5\na,1,1,2.0\nn1,,1,1.1\nb,1,0,1.5\n a ,1,0,1.0\nn2,,0,0.9\nn1,,0,1.0\n";
    let other = parse(shuffled).unwrap();
    assert_eq!(other.checkpoints, 2);
    let res1 = estimate(&panel, &no_boot()).unwrap();
    let res2 = estimate(&other, &no_boot()).unwrap();
    assert_eq!(res1.cells, res2.cells);
    // the fixtures round-trip exactly
    let (fixture, _) = load_fixture("a");
    let mut out = Vec::new();
    fixture.write_csv(&mut out).unwrap();
    assert_eq!(Panel::from_csv(out.as_slice()).unwrap(), fixture);
}

#[test]
fn malformed_csv_errors_name_the_line_and_problem() {
    // wrong header, missing and extra header columns
    let m = err_msg("instance,cohort,step,outcome\na,1,0,1\n");
    assert!(
        m.contains("line 1") && m.contains("header") && m.contains("step"),
        "{m}"
    );
    let m = err_msg("instance,cohort,checkpoint\na,1,0\n");
    assert!(m.contains("line 1") && m.contains("header"), "{m}");
    let m = err_msg("instance,cohort,checkpoint,outcome,extra\n");
    assert!(m.contains("line 1") && m.contains("extra"), "{m}");
    let m = err_msg("");
    assert!(m.contains("line 1") && m.contains("empty"), "{m}");
    // a row with a missing or an extra column
    let m = err_msg(&with_line(3, "a,1,1"));
    assert!(m.contains("line 3") && m.contains("found 3"), "{m}");
    let m = err_msg(&with_line(4, "b,1,0,1.5,9"));
    assert!(m.contains("line 4") && m.contains("found 5"), "{m}");
    // non-numeric values
    let m = err_msg(&with_line(5, "b,1,1,abc"));
    assert!(m.contains("line 5") && m.contains("outcome `abc`"), "{m}");
    for bad in ["NaN", "nan", "inf", "-inf", "infinity", ""] {
        let m = err_msg(&with_line(2, &format!("a,1,0,{bad}")));
        assert!(
            m.contains("line 2") && m.contains("not a finite number"),
            "{bad}: {m}"
        );
    }
    let m = err_msg(&with_line(6, "n1,x,0,1.0"));
    assert!(m.contains("line 6") && m.contains("cohort `x`"), "{m}");
    let m = err_msg(&with_line(6, "n1,1.5,0,1.0"));
    assert!(m.contains("line 6") && m.contains("cohort `1.5`"), "{m}");
    let m = err_msg(&with_line(7, "n1,,-1,1.1"));
    assert!(m.contains("line 7") && m.contains("checkpoint `-1`"), "{m}");
    let m = err_msg(&with_line(7, "n1,,one,1.1"));
    assert!(
        m.contains("line 7") && m.contains("checkpoint `one`"),
        "{m}"
    );
    let m = err_msg(&with_line(2, ",1,0,1.0"));
    assert!(
        m.contains("line 2") && m.contains("instance name is empty"),
        "{m}"
    );
    // duplicate (instance, checkpoint)
    let m = err_msg(&format!("{GOOD}a,1,1,7.0\n"));
    assert!(
        m.contains("line 10") && m.contains("duplicate") && m.contains("line 3"),
        "{m}"
    );
    // unbalanced panel
    let m = err_msg(&GOOD.replace("b,1,1,2.5\n", ""));
    assert!(
        m.contains("unbalanced") && m.contains("`b`") && m.contains("checkpoint 1"),
        "{m}"
    );
    let m = err_msg(&format!("{GOOD}a,1,2,7.0\n"));
    assert!(
        m.contains("unbalanced") && m.contains("checkpoint 2"),
        "{m}"
    );
    // a gap in the checkpoints
    let m = err_msg(&GOOD.replace(",1,1.", ",2,1.").replace(",1,2.", ",2,2."));
    assert!(m.contains("checkpoint 1 is missing"), "{m}");
    for huge in ["99999999999", "18446744073709551615"] {
        let m = err_msg(&with_line(9, &format!("n2,,{huge},1.3")));
        assert!(m.contains("checkpoint 2 is missing"), "{m}");
    }
    // an instance whose cohort differs between rows
    let m = err_msg(&with_line(3, "a,2,1,2.0"));
    assert!(
        m.contains("line 3")
            && m.contains("`a`")
            && m.contains("cohort 2")
            && m.contains("cohort 1"),
        "{m}"
    );
    let m = err_msg(&with_line(7, "n1,1,1,1.1"));
    assert!(m.contains("line 7") && m.contains("never trained"), "{m}");
    // no never-trained instances
    let m = err_msg("instance,cohort,checkpoint,outcome\na,1,0,1\na,1,1,2\nb,1,0,1\nb,1,1,3\n");
    assert!(m.contains("no never-trained"), "{m}");
    // a single never-trained instance
    let m = err_msg(&GOOD.replace("n2,,0,0.9\nn2,,1,1.3\n", ""));
    assert!(
        m.contains("never-trained group has a single instance") && m.contains("`n1`"),
        "{m}"
    );
    // a cohort with a single instance
    let m = err_msg(
        &format!("{GOOD}c,2,0,1\nc,2,1,1\nc,2,2,1\n")
            .replace("a,1,1,2.0\n", "a,1,1,2.0\na,1,2,2.0\n")
            .replace("b,1,1,2.5\n", "b,1,1,2.5\nb,1,2,2.5\n")
            .replace("n1,,1,1.1\n", "n1,,1,1.1\nn1,,2,1.1\n")
            .replace("n2,,1,1.3\n", "n2,,1,1.3\nn2,,2,1.3\n"),
    );
    assert!(
        m.contains("cohort 2 has a single instance") && m.contains("`c`"),
        "{m}"
    );
    // a cohort at the first checkpoint
    let m = err_msg(&GOOD.replace("a,1,", "a,0,").replace("b,1,", "b,0,"));
    assert!(m.contains("cohort 0") && m.contains("no pre-period"), "{m}");
    // a cohort beyond the last checkpoint
    let m = err_msg(&GOOD.replace("a,1,", "a,5,").replace("b,1,", "b,5,"));
    assert!(
        m.contains("cohort 5") && m.contains("beyond the last checkpoint 1"),
        "{m}"
    );
    let m = err_msg(&GOOD.replace("a,1,", "a,2,").replace("b,1,", "b,2,"));
    assert!(m.contains("cohort 2") && m.contains("beyond"), "{m}");
    // only never-trained instances
    let m = err_msg("instance,cohort,checkpoint,outcome\nn1,,0,1\nn1,,1,2\nn2,,0,1\nn2,,1,3\n");
    assert!(m.contains("no trained instances"), "{m}");
    // a single checkpoint
    let m = err_msg("instance,cohort,checkpoint,outcome\nn1,,0,1\nn2,,0,1\n");
    assert!(m.contains("at least 2 checkpoints"), "{m}");
    // header only
    let m = err_msg("instance,cohort,checkpoint,outcome\n");
    assert!(m.contains("no data rows"), "{m}");
    // invalid UTF-8
    let err = Panel::from_csv(&b"instance,cohort,checkpoint,outcome\na,1,0,1\n\xff,1,1,2\n"[..])
        .unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn row_and_struct_errors() {
    let rows = vec![
        ("a".to_string(), Some(1), 0, 1.0),
        ("a".to_string(), Some(1), 0, 2.0),
    ];
    let m = Panel::from_rows(rows).unwrap_err().to_string();
    assert!(
        m.contains("row 2") && m.contains("row 1") && m.contains("duplicate"),
        "{m}"
    );
    let rows = vec![("a".to_string(), Some(1), 0, f64::NAN)];
    let m = Panel::from_rows(rows).unwrap_err().to_string();
    assert!(m.contains("row 1") && m.contains("finite"), "{m}");

    let good = parse(GOOD).unwrap();
    let mut bad = good.clone();
    bad.outcomes.pop();
    assert!(matches!(
        estimate(&bad, &no_boot()),
        Err(DidError::Panel(PanelError::Shape(_)))
    ));
    let mut bad = good.clone();
    bad.outcomes[3] = f64::INFINITY;
    let m = estimate(&bad, &no_boot()).unwrap_err().to_string();
    assert!(m.contains("`b`") && m.contains("checkpoint 1"), "{m}");
    let mut bad = good.clone();
    bad.instances[1] = "a".to_string();
    assert!(
        estimate(&bad, &no_boot())
            .unwrap_err()
            .to_string()
            .contains("twice")
    );
    let mut bad = good.clone();
    bad.cohorts.pop();
    assert!(estimate(&bad, &no_boot()).is_err());
    let mut bad = good;
    bad.checkpoints = usize::MAX;
    assert!(estimate(&bad, &no_boot()).is_err());
}

// -------------------------------------------------------------------------------------
// performance at the paper's size
// -------------------------------------------------------------------------------------

/// 143 cohorts of 100 plus 2,000 never-trained instances, 144 checkpoints (the paper's
/// size). Run with `cargo test --release -p mnemo-measures -- --ignored --nocapture`.
#[test]
#[ignore]
fn paper_size_timing() {
    let cohorts: Vec<(usize, usize)> = (1..=143).map(|g| (g, 100)).collect();
    let panel = simulate(1, &cohorts, 2000, 144, 0.3, |g, c| {
        0.5 / (1.0 + (c - g) as f64)
    });
    assert_eq!(panel.instances.len(), 16_300);
    let threads = 2;
    let t = Instant::now();
    let res = estimate(
        &panel,
        &DidOptions {
            draws: 0,
            threads,
            ..DidOptions::default()
        },
    )
    .unwrap();
    let full = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let boot = estimate(
        &panel,
        &DidOptions {
            draws: 1000,
            threads,
            ..DidOptions::default()
        },
    )
    .unwrap();
    let with_boot = t.elapsed().as_secs_f64();
    let mut csv = Vec::new();
    panel.write_csv(&mut csv).unwrap();
    let t = Instant::now();
    let parsed = Panel::from_csv(csv.as_slice()).unwrap();
    let parse = t.elapsed().as_secs_f64();
    assert_eq!(parsed, panel);
    println!(
        "paper size: {} cells; ATT + SE {full:.3} s; with 1000 bootstrap draws {with_boot:.3} s \
         (threads {threads}); critical value {:.3}; parsing the {:.0} MB CSV {parse:.3} s",
        res.cells.len(),
        boot.critical_value,
        csv.len() as f64 / 1e6,
    );
}
