//! FLIPD against METHODS.md's closed form for Gaussian data (exact noise predictor,
//! through the same tensor code as the trained network), and Hutchinson's trace against
//! the exact one within its stated standard error.

use mnemo_core::backend::Device;
use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::geometry::GeometryModel;
use mnemo_core::train::block_on;
use mnemo_measures::geometry::EpsNet;
use mnemo_measures::geometry::flipd::{GaussianEps, Trace, eps_and_trace, flipd};

fn device() -> Device {
    Device::flex().autodiff()
}

fn check(g: &GaussianEps, xs: &[Vec<f64>], t0: f64) {
    let flat: Vec<f64> = xs.iter().flatten().copied().collect();
    let (got, se) = block_on(flipd(g, &flat, t0, Trace::Exact, &device())).expect("flipd");
    assert!(se.is_none());
    for (x, v) in xs.iter().zip(&got) {
        let want = g.flipd_closed_form(x, t0).expect("invertible");
        assert!(
            (v - want).abs() < 1e-6,
            "x = {x:?}, t0 = {t0}: FLIPD {v} vs closed form {want} (diff {:e})",
            v - want
        );
    }
}

#[test]
fn flipd_of_a_full_rank_gaussian_matches_the_closed_form() {
    let g = GaussianEps {
        mu: vec![0.25, -0.5],
        cov: vec![1.0, 0.3, 0.3, 0.5],
    };
    let xs = vec![vec![0.25, -0.5], vec![1.0, 0.5], vec![-0.75, 0.0]];
    for t0 in [1e-4, 1e-2, 0.3] {
        check(&g, &xs, t0);
    }
    let v = g.flipd_closed_form(&[0.25, -0.5], 1e-4).expect("ok");
    assert!(
        (v - 2.0).abs() < 1e-3,
        "a full-rank Gaussian has FLIPD about D: {v}"
    );
}

#[test]
fn flipd_of_a_rank_deficient_gaussian_matches_the_closed_form() {
    // A flat 2-D Gaussian in 3-D: FLIPD about 2 on its support.
    let g = GaussianEps {
        mu: vec![0.5, 0.0, 0.0],
        cov: vec![1.0, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0],
    };
    let off = 2f64.powi(-12);
    let xs = vec![
        vec![0.5, 0.0, 0.0],
        vec![0.75, 0.5, 0.0],
        vec![0.75, 0.5, off],
    ];
    for t0 in [1e-4, 1e-3, 0.05] {
        check(&g, &xs, t0);
    }
    let v = g.flipd_closed_form(&[0.5, 0.0, 0.0], 1e-4).expect("ok");
    assert!((v - 2.0).abs() < 1e-3, "{v}");
}

#[test]
fn flipd_of_a_point_mass_matches_the_closed_form() {
    let g = GaussianEps {
        mu: vec![0.0, 0.0],
        cov: vec![0.0; 4],
    };
    let off = 2f64.powi(-12);
    let xs = vec![vec![0.0, 0.0], vec![off, 0.0], vec![off, -off]];
    for t0 in [1e-4, 1e-3, 0.1] {
        check(&g, &xs, t0);
    }
    assert!(g.flipd_closed_form(&[0.0, 0.0], 1e-4).expect("ok").abs() < 1e-12);
}

fn hutchinson_within_error(
    model: &impl mnemo_measures::geometry::NoisePredictor,
    y: &[f64],
    t: f64,
) {
    let dev = device();
    let exact = block_on(eps_and_trace(model, y, t, Trace::Exact, &dev)).expect("exact");
    let mut rng = rng::stream(7, Stream::Geometry);
    let h = block_on(eps_and_trace(
        model,
        y,
        t,
        Trace::Hutchinson {
            probes: 256,
            rng: &mut rng,
        },
        &dev,
    ))
    .expect("hutchinson");
    let se = h.se.expect("standard errors");
    for (i, ((&a, &b), &s)) in exact.trace.iter().zip(&h.trace).zip(&se).enumerate() {
        assert!(
            (a - b).abs() <= 4.0 * s + 1e-4 * a.abs().max(1.0),
            "point {i}: exact {a}, Hutchinson {b} ± {s}"
        );
        assert!(s > 0.0, "a non-diagonal Jacobian has Hutchinson variance");
    }
    for (a, b) in exact.eps.iter().zip(&h.eps) {
        assert_eq!(a, b, "eps itself does not depend on the probes");
    }
}

#[test]
fn hutchinson_agrees_with_the_exact_trace() {
    let g = GaussianEps {
        mu: vec![0.1, 0.2, 0.3],
        cov: vec![1.0, 0.4, 0.2, 0.4, 0.8, 0.1, 0.2, 0.1, 0.3],
    };
    hutchinson_within_error(&g, &[0.5, 0.5, 0.5, -1.0, 0.0, 2.0], 0.05);
    let net = EpsNet::new(&GeometryModel::default(), 3, 3, &device());
    hutchinson_within_error(&net, &[0.5, 0.5, 0.5, -1.0, 0.0, 2.0, 0.0, 0.0, 0.0], 0.01);
}
