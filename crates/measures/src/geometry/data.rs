//! Seeded point clouds with a known local intrinsic dimension at every point.
//!
//! Every draw comes from `rng::stream(seed, Stream::Data)`. The layouts (all exact, noise
//! 0 unless `noise` is set; with noise the true LID still names the manifold's):
//!
//! - **von Mises mixture** (2-D, LID 1): three components on the unit circle at angles
//!   0, 2π/3 and 4π/3, concentration κ = 4, equal weights (Best-Fisher sampler).
//! - **lollipop** (2-D): a disk of radius 1 at the origin (60% of the points, uniform by
//!   area, LID 2), a stick from (√½, √½) to (2.5, 2.5) (30%, uniform, LID 1), and a point
//!   at (2.5, 0) (the rest, every copy exactly there, LID 0). The counts are the
//!   rounded shares, not random.
//! - **sphere** (3-D, LID 2): uniform on the unit sphere.
//! - **plane** (3-D, LID 2): uniform on the square [-1, 1]² of the plane z = x/2 + y/4.
//! - **swiss roll** (3-D, LID 2): `u = 1.5π (1 + 2 s)`, `s ~ U(0, 1)`, height `h ~ U(-1,
//!   1)`, point `(u cos u / 10, h, u sin u / 10)`.
//!
//! **Isolated points** lie on a sparse *arm* of the ground truth: a line segment (LID 1)
//! away from the manifold that only the isolated points sample, evenly spaced along it
//! (positions `(i + ½) / n` of its length). A model that memorises one collapses onto it
//! (`LID_theta ≈ 0 < LID_* = 1`: OD-Mem). Arms: the circle's from (1.6, −0.6) to
//! (1.6, 0.6); the lollipop's from (−2.2, 1.0) to (−2.2, 2.5); the 3-D sets' on the
//! vertical or y axis beyond the surface ((0, 0, 1.6)-(0, 0, 2.4) for the sphere and the
//! plane, (0, 1.6, 0)-(0, 2.4, 0) for the swiss roll).
//!
//! **Duplicated points**: `duplicated` manifold points of the manifold's largest
//! dimension (chosen by the seeded stream, never the lollipop's point) get `copies - 1`
//! exact copies appended; every copy, the original included, has true LID 0 (a point
//! mass of the training distribution).

use mnemo_core::rng::{self, Stream};
use mnemo_core::spec::geometry::{GeometryData, Manifold};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Which part of a data set a point belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// The lollipop's disk (LID 2).
    Disk,
    /// The lollipop's stick (LID 1).
    Stick,
    /// The lollipop's point (LID 0).
    Point,
    /// The manifold of the other data sets.
    Manifold,
    /// An isolated point on a sparse arm (LID 1).
    Isolated,
    /// A copy of a duplicated point (LID 0).
    Duplicated,
}

impl Region {
    /// Every region, in table order.
    pub const ALL: [Region; 6] = [
        Region::Disk,
        Region::Stick,
        Region::Point,
        Region::Manifold,
        Region::Isolated,
        Region::Duplicated,
    ];

    /// The name in files.
    pub fn key(self) -> &'static str {
        match self {
            Region::Disk => "disk",
            Region::Stick => "stick",
            Region::Point => "point",
            Region::Manifold => "manifold",
            Region::Isolated => "isolated",
            Region::Duplicated => "duplicated",
        }
    }
}

/// A generated training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSet {
    /// Ambient dimension `D`.
    pub dim: usize,
    /// Points, row-major (`n * dim`).
    pub points: Vec<f64>,
    /// True LID of each point.
    pub true_lid: Vec<f64>,
    /// Region of each point.
    pub region: Vec<Region>,
}

impl PointSet {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.true_lid.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.true_lid.is_empty()
    }

    /// Point `i`.
    pub fn point(&self, i: usize) -> &[f64] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }

    fn push(&mut self, x: &[f64], lid: f64, region: Region) {
        self.points.extend_from_slice(x);
        self.true_lid.push(lid);
        self.region.push(region);
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// One von Mises draw with mean 0 and concentration `kappa > 0` (Best and Fisher, 1979).
fn von_mises(rng: &mut ChaCha8Rng, kappa: f64) -> f64 {
    let tau = 1.0 + (1.0 + 4.0 * kappa * kappa).sqrt();
    let rho = (tau - (2.0 * tau).sqrt()) / (2.0 * kappa);
    let r = (1.0 + rho * rho) / (2.0 * rho);
    loop {
        let u1: f64 = rng.random();
        let z = (std::f64::consts::PI * u1).cos();
        let f = (1.0 + r * z) / (r + z);
        let c = kappa * (r - f);
        let u2: f64 = rng.random();
        if c * (2.0 - c) - u2 > 0.0 || (c / u2).ln() + 1.0 - c >= 0.0 {
            let u3: f64 = rng.random();
            let theta = f.clamp(-1.0, 1.0).acos();
            return if u3 > 0.5 { theta } else { -theta };
        }
    }
}

fn arm(manifold: Manifold) -> ([f64; 3], [f64; 3]) {
    match manifold {
        Manifold::VonMises => ([1.6, -0.6, 0.0], [1.6, 0.6, 0.0]),
        Manifold::Lollipop => ([-2.2, 1.0, 0.0], [-2.2, 2.5, 0.0]),
        Manifold::Sphere | Manifold::Plane => ([0.0, 0.0, 1.6], [0.0, 0.0, 2.4]),
        Manifold::SwissRoll => ([0.0, 1.6, 0.0], [0.0, 2.4, 0.0]),
    }
}

/// The training set of `data` under `seed` (see the module's documentation).
pub fn generate(data: &GeometryData, seed: u64) -> PointSet {
    let mut rng = rng::stream(seed, Stream::Data);
    let m = data.manifold;
    let dim = m.ambient();
    let mut set = PointSet {
        dim,
        points: Vec::new(),
        true_lid: Vec::new(),
        region: Vec::new(),
    };
    let n = data.points;
    let tau = std::f64::consts::TAU;
    match m {
        Manifold::VonMises => {
            for _ in 0..n {
                let c = rng.random_range(0..3usize) as f64;
                let a = c * tau / 3.0 + von_mises(&mut rng, 4.0);
                set.push(&[a.cos(), a.sin()], 1.0, Region::Manifold);
            }
        }
        Manifold::Lollipop => {
            let n_disk = (0.6 * n as f64).round() as usize;
            let n_stick = ((0.3 * n as f64).round() as usize).min(n - n_disk);
            for _ in 0..n_disk {
                let r = rng.random::<f64>().sqrt();
                let a = rng.random::<f64>() * tau;
                set.push(&[r * a.cos(), r * a.sin()], 2.0, Region::Disk);
            }
            let p0 = 0.5f64.sqrt();
            for _ in 0..n_stick {
                let s: f64 = rng.random();
                let v = p0 + s * (2.5 - p0);
                set.push(&[v, v], 1.0, Region::Stick);
            }
            for _ in n_disk + n_stick..n {
                set.push(&[2.5, 0.0], 0.0, Region::Point);
            }
        }
        Manifold::Sphere => {
            for _ in 0..n {
                let mut v = [normal(&mut rng), normal(&mut rng), normal(&mut rng)];
                let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-300);
                v.iter_mut().for_each(|c| *c /= r);
                set.push(&v, 2.0, Region::Manifold);
            }
        }
        Manifold::Plane => {
            for _ in 0..n {
                let x = rng.random_range(-1.0..1.0);
                let y = rng.random_range(-1.0..1.0);
                set.push(&[x, y, 0.5 * x + 0.25 * y], 2.0, Region::Manifold);
            }
        }
        Manifold::SwissRoll => {
            for _ in 0..n {
                let s: f64 = rng.random();
                let u = 1.5 * std::f64::consts::PI * (1.0 + 2.0 * s);
                let h = rng.random_range(-1.0..1.0);
                set.push(
                    &[u * u.cos() / 10.0, h, u * u.sin() / 10.0],
                    2.0,
                    Region::Manifold,
                );
            }
        }
    }
    if data.noise > 0.0 {
        for v in set.points.iter_mut() {
            *v += data.noise * normal(&mut rng);
        }
    }
    // Duplicates: distinct manifold points of the largest dimension, chosen by the stream.
    let top = set.true_lid.iter().copied().fold(0.0f64, f64::max);
    let mut candidates: Vec<usize> = (0..set.len()).filter(|&i| set.true_lid[i] == top).collect();
    let mut chosen = Vec::new();
    for _ in 0..data.duplicated.min(candidates.len()) {
        let j = rng.random_range(0..candidates.len());
        chosen.push(candidates.swap_remove(j));
    }
    let (a, b) = arm(m);
    for i in 0..data.isolated {
        let s = (i as f64 + 0.5) / data.isolated as f64;
        let x: Vec<f64> = (0..dim).map(|c| a[c] + s * (b[c] - a[c])).collect();
        set.push(&x, 1.0, Region::Isolated);
    }
    for &i in &chosen {
        set.true_lid[i] = 0.0;
        set.region[i] = Region::Duplicated;
        let x = set.point(i).to_vec();
        for _ in 1..data.copies {
            set.push(&x, 0.0, Region::Duplicated);
        }
    }
    set
}
