//! lPCA and MLE against scikit-dimension 0.3.4, pointwise, on the seeded clouds of
//! `tests/reference/geometry_reference.py` (fixtures in `tests/fixtures/geometry/`):
//! lPCA's integer dimensions exactly, MLE to 1e-9 (relative), and the degenerate cases.

use std::path::PathBuf;

use mnemo_measures::geometry::estimators::{
    LpcaVersion, copies, lpca, lpca_from_eigenvalues, median_spacing, mle, mle_from_distances,
    mle_global,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/geometry")
}

struct Cloud {
    name: String,
    dim: usize,
    k_lpca: usize,
    k_mle: usize,
    mle_global: f64,
    points: Vec<f64>,
    fo: Vec<f64>,
    maxgap: Vec<f64>,
    mle: Vec<f64>,
}

fn clouds() -> Vec<Cloud> {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let list = manifest.as_array().expect("list");
    assert!(list.len() >= 3, "at least three clouds");
    list.iter()
        .map(|m| {
            let name = m["name"].as_str().expect("name").to_string();
            let dim = m["dim"].as_u64().expect("dim") as usize;
            let text =
                std::fs::read_to_string(fixtures().join(format!("{name}.csv"))).expect("cloud csv");
            let mut c = Cloud {
                name,
                dim,
                k_lpca: m["k_lpca"].as_u64().expect("k") as usize,
                k_mle: m["k_mle"].as_u64().expect("k") as usize,
                mle_global: m["mle_global"].as_f64().expect("global"),
                points: Vec::new(),
                fo: Vec::new(),
                maxgap: Vec::new(),
                mle: Vec::new(),
            };
            for line in text.lines() {
                let v: Vec<f64> = line
                    .split(',')
                    .map(|s| s.parse().expect("number"))
                    .collect();
                assert_eq!(v.len(), dim + 3);
                c.points.extend_from_slice(&v[..dim]);
                c.fo.push(v[dim]);
                c.maxgap.push(v[dim + 1]);
                c.mle.push(v[dim + 2]);
            }
            assert_eq!(c.fo.len(), m["n"].as_u64().expect("n") as usize);
            c
        })
        .collect()
}

#[test]
fn lpca_equals_skdim_pointwise() {
    for c in clouds() {
        for (version, want) in [(LpcaVersion::Fo, &c.fo), (LpcaVersion::MaxGap, &c.maxgap)] {
            let got = lpca(&c.points, c.dim, c.k_lpca, version);
            let bad: Vec<usize> = (0..want.len())
                .filter(|&i| got[i] != Some(want[i]))
                .collect();
            assert!(
                bad.is_empty(),
                "{} {version:?}: {} points differ, first {:?}: got {:?}, skdim {}",
                c.name,
                bad.len(),
                bad.first(),
                bad.first().map(|&i| got[i]),
                bad.first().map(|&i| want[i]).unwrap_or(0.0)
            );
        }
    }
}

#[test]
fn mle_equals_skdim_pointwise_and_global() {
    for c in clouds() {
        let got = mle(&c.points, c.dim, c.k_mle);
        for (i, (g, w)) in got.iter().zip(&c.mle).enumerate() {
            let g = g.expect("defined");
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{} point {i}: {g} vs skdim {w}",
                c.name
            );
        }
        let global = mle_global(&got).expect("defined");
        assert!(
            (global - c.mle_global).abs() <= 1e-9,
            "{}: {global} vs {}",
            c.name,
            c.mle_global
        );
    }
}

#[test]
fn degenerate_neighbourhoods_are_defined_or_none() {
    // Three exact copies and a far point: the copies' neighbourhoods are point masses.
    let pts = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0];
    let fo = lpca(&pts, 2, 2, LpcaVersion::Fo);
    assert_eq!(fo[0], Some(0.0));
    let mg = lpca(&pts, 2, 2, LpcaVersion::MaxGap);
    assert_eq!(mg[0], None);
    // One neighbour at distance 0 and one beyond: m = 0; all at 0: undefined.
    assert_eq!(mle_from_distances(&[0.0, 1.0]), Some(0.0));
    assert_eq!(mle_from_distances(&[0.0, 0.0]), None);
    assert_eq!(mle_from_distances(&[1.0, 1.0, 1.0]), None);
    assert_eq!(mle_global(&[Some(2.0), Some(0.0)]), Some(0.0));
    assert_eq!(mle_global(&[None]), None);
    assert_eq!(lpca_from_eigenvalues(&[], LpcaVersion::Fo), None);
    assert_eq!(
        lpca_from_eigenvalues(&[1.0, 0.0], LpcaVersion::MaxGap),
        Some(1.0)
    );
    for v in mle(&pts, 2, 2).into_iter().flatten() {
        assert!(v.is_finite());
    }
    // Spacing ignores exact duplicates; a sample on a point copies it.
    let sp = median_spacing(&pts, 2).expect("two distinct points");
    assert!((sp - 5f64.sqrt()).abs() < 1e-12);
    assert_eq!(
        copies(&[1.0, 2.0, 9.0, 9.0], &pts, 2, 0.1),
        vec![Some(3), None]
    );
}
