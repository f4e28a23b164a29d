"""Time `mnemo did` against `differences` (ATTgt, est_method="reg", never-treated
controls, varying base period) on simulated panels; see tests/bench/did."""

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from differences import ATTgt


def simulate(n_never, n_cohorts, per_cohort, checkpoints, seed):
    """Panel with cohorts 1..n_cohorts, a decaying effect after treatment and noise."""
    rng = np.random.default_rng(seed)
    cohorts = np.concatenate(
        [np.full(n_never, np.nan)] + [np.full(per_cohort, g, float) for g in range(1, n_cohorts + 1)]
    )
    n = len(cohorts)
    base = rng.normal(3.0, 0.3, size=(n, 1))
    trend = -0.02 * np.arange(checkpoints)[None, :]
    t = np.arange(checkpoints)[None, :]
    g = cohorts[:, None]
    e = t - g
    effect = np.where(np.isnan(g) | (e < 0), 0.0, -0.3 * np.exp(-np.nan_to_num(e, nan=0.0) / 4.0))
    y = base + trend + effect + rng.normal(0, 0.1, size=(n, checkpoints))
    return cohorts, y


def write_csv(path, cohorts, y):
    n, c = y.shape
    inst = np.repeat([f"i{i}" for i in range(n)], c)
    ck = np.tile(np.arange(c), n)
    coh = np.repeat(["" if np.isnan(g) else str(int(g)) for g in cohorts], c)
    df = pd.DataFrame({"instance": inst, "cohort": coh, "checkpoint": ck, "outcome": y.reshape(-1)})
    df.to_csv(path, index=False, float_format="%.17g")


def run_mnemo(mnemo, panel, out, draws):
    t0 = time.perf_counter()
    res = subprocess.run(
        [mnemo, "did", "--panel", str(panel), "--out", str(out), "--draws", str(draws)],
        capture_output=True, text=True, check=True,
    )
    wall = time.perf_counter() - t0
    estimated = float(re.search(r"estimated in ([0-9.]+) s", res.stderr).group(1))
    return wall, estimated


def run_differences(cohorts, y):
    n, c = y.shape
    df = pd.DataFrame({
        "instance": np.repeat(np.arange(n), c),
        "checkpoint": np.tile(np.arange(c), n),
        "cohort": np.repeat(cohorts, c),
        "outcome": y.reshape(-1),
    }).set_index(["instance", "checkpoint"])
    t0 = time.perf_counter()
    att = ATTgt(data=df, cohort_column="cohort", base_period="varying")
    att.fit(formula="outcome", est_method="reg", control_group="never_treated", progress_bar=False)
    att.aggregate("event")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Mid-size panel: both tools.
        cohorts, y = simulate(2000, 19, 100, 20, seed=1)
        mid = tmp / "mid.csv"
        write_csv(mid, cohorts, y)
        mnemo_wall, mnemo_est = run_mnemo(args.mnemo, mid, tmp / "mid_out", 0)
        diff_s = run_differences(cohorts, y)
        # The paper's size: mnemo alone.
        cohorts, y = simulate(2000, 143, 100, 144, seed=2)
        full = tmp / "full.csv"
        write_csv(full, cohorts, y)
        full_wall, full_est = run_mnemo(args.mnemo, full, tmp / "full_out", 0)
        boot_wall, boot_est = run_mnemo(args.mnemo, full, tmp / "boot_out", 1000)
    result = {
        "mnemo_seconds": mnemo_wall,
        "mnemo_estimator_seconds": mnemo_est,
        "differences_seconds": diff_s,
        "ratio": diff_s / mnemo_wall,
        "mnemo_full_seconds": full_est,
        "mnemo_full_wall_seconds": full_wall,
        "mnemo_bootstrap_seconds": boot_est,
        "mnemo_bootstrap_wall_seconds": boot_wall,
    }
    (out / "did.json").write_text(json.dumps(result, indent=2) + "\n")
    print("mid-size panel (3,900 instances: 19 cohorts of 100 + 2,000 never trained; 20 checkpoints)")
    print(f"  differences ATTgt + event aggregation  {diff_s:9.3f} s")
    print(f"  mnemo did (whole command, CSV parse included) {mnemo_wall:9.3f} s  (estimator {mnemo_est:.3f} s)")
    print(f"  ratio differences / mnemo              {diff_s / mnemo_wall:9.1f} x")
    print("paper size (16,300 instances: 143 cohorts of 100 + 2,000 never trained; 144 checkpoints)")
    print(f"  mnemo ATT + SEs (estimator)            {full_est:9.3f} s  (whole command {full_wall:.2f} s)")
    print(f"  mnemo with 1000 bootstrap draws        {boot_est:9.3f} s  (whole command {boot_wall:.2f} s)")


if __name__ == "__main__":
    main()
