"""Reference values for Mnemo's data-side LID estimators (METHODS.md section 6).

Generates seeded point clouds and runs scikit-dimension 0.3.4 on them pointwise:

- lPCA, versions FO (alphaFO = 0.05) and maxgap, through `GlobalEstimator.fit_pw` with
  `n_neighbors = k_lpca`: skdim takes the k nearest neighbours of each point from
  sklearn's `NearestNeighbors.kneighbors()` called without X, so the point itself is
  excluded; each neighbourhood (k points) is fitted by sklearn's PCA, i.e. centred on
  its own mean, eigenvalues = explained_variance_ (denominator k - 1, which cancels in
  both versions). FO counts eigenvalues strictly above 0.05 times the largest; maxgap is
  1 + argmax_i lambda_i / lambda_{i+1}.
- MLE (Levina-Bickel, skdim's defaults: no noise model, `unbiased=False`,
  `neighborhood_based=True`) with `n_neighbors = k_mle`: per point, with its k
  neighbour distances R_1 <= ... <= R_k (self excluded), m = (k - 1) / sum_{j=1..k}
  log(R_k / R_j) (the j = k term is 0). The global value with `comb="mle"` is
  1 / mean(1 / m) (MacKay-Ghahramani).

Writes, into tests/fixtures/geometry/: `<name>.csv` (no header; columns x0..x{D-1},
lpca_fo, lpca_maxgap, mle; floats with repr, so they read back exactly) and
`manifest.json` (name, dim, n, k_lpca, k_mle, mle_global). The clouds have continuous
coordinates (no distance ties, which sklearn and Mnemo could order differently).

Usage (pinned venv, see requirements-geometry.txt):
    python3 -m venv /tmp/skdim-venv
    /tmp/skdim-venv/bin/pip install -r tests/reference/requirements-geometry.txt
    /tmp/skdim-venv/bin/python tests/reference/geometry_reference.py
"""

import json
import warnings
from pathlib import Path

import numpy as np
import skdim

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "geometry"


def circle(rng, n):
    a = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([np.cos(a), np.sin(a)], 1)
    return x + rng.normal(0, 0.01, x.shape)


def sphere(rng, n):
    x = rng.normal(size=(n, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x + rng.normal(0, 0.005, x.shape)


def plane5(rng, n):
    z = rng.uniform(-1, 1, (n, 2))
    basis = np.linalg.qr(rng.normal(size=(5, 2)))[0]
    return z @ basis.T + rng.normal(0, 0.01, (n, 5))


def lollipop(rng, n):
    # A disk (LID 2) and a stick (LID 1), as Mnemo's generator lays them out.
    nd = n * 2 // 3
    r = np.sqrt(rng.uniform(0, 1, nd))
    a = rng.uniform(0, 2 * np.pi, nd)
    disk = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    s = rng.uniform(0, 1, n - nd)
    p0 = np.array([np.sqrt(0.5), np.sqrt(0.5)])
    p1 = np.array([2.5, 2.5])
    stick = p0 + s[:, None] * (p1 - p0)
    return np.concatenate([disk, stick]) + rng.normal(0, 1e-3, (n, 2))


CLOUDS = [
    ("circle", circle, 300, 20, 20),
    ("sphere", sphere, 400, 30, 20),
    ("plane5", plane5, 300, 25, 20),
    ("lollipop", lollipop, 300, 15, 10),
    ("sphere_k100", sphere, 250, 100, 100),
]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for seed, (name, gen, n, k_lpca, k_mle) in enumerate(CLOUDS):
        rng = np.random.default_rng(1000 + seed)
        x = gen(rng, n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fo = skdim.id.lPCA(ver="FO", alphaFO=0.05).fit_pw(x, n_neighbors=k_lpca).dimension_pw_
            mg = skdim.id.lPCA(ver="maxgap").fit_pw(x, n_neighbors=k_lpca).dimension_pw_
            mle = skdim.id.MLE().fit(x, n_neighbors=k_mle, comb="mle")
        with open(OUT / f"{name}.csv", "w") as f:
            for i in range(n):
                row = [repr(float(v)) for v in x[i]]
                row += [str(int(fo[i])), str(int(mg[i])), repr(float(mle.dimension_pw_[i]))]
                f.write(",".join(row) + "\n")
        manifest.append(
            {
                "name": name,
                "dim": int(x.shape[1]),
                "n": n,
                "k_lpca": k_lpca,
                "k_mle": k_mle,
                "mle_global": float(mle.dimension_),
            }
        )
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
