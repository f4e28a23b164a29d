#!/usr/bin/env python3
"""Reference numbers for the difference-in-differences estimator (METHODS.md section 1).

Builds a few fixed, seeded simulated panels, writes them as CSV fixtures in Mnemo's panel
format (`instance,cohort,checkpoint,outcome`, empty cohort = never trained) under
tests/fixtures/did/, runs the independent `differences` package on each (ATTgt with
est_method="reg", control_group="never_treated", base_period="varying", analytic standard
errors) and writes its cell-level and aggregated numbers to
tests/fixtures/did/reference_<name>.json.

The Rust tests (crates/measures/tests/did.rs) read these files; they never run Python.

Run it from the repository root, in a virtual environment outside the repository:

    python3 -m venv /root/.cache/mnemo-venv
    /root/.cache/mnemo-venv/bin/pip install differences==0.3.0
    /root/.cache/mnemo-venv/bin/python tests/reference/did_reference.py

Conventions mapped onto `differences`: checkpoints are its time periods (integers 0..C-1),
an instance's cohort is its treatment time in the same units (the first checkpoint after
it was trained on), and a never-trained instance has a missing (NaN) cohort, which is how
`differences` marks the never-treated. The panel is read back from the CSV that was just
written, so both implementations see exactly the same floating-point outcomes.
"""

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import differences
from differences import ATTgt

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "did"


def simulate(seed, cohort_sizes, n_never, checkpoints, effect, hetero=False):
    """Outcome = instance level + common (non-linear) trend + noise - effect after training."""
    rng = np.random.default_rng(seed)
    rows = []
    trend = np.cumsum(rng.normal(-0.3, 0.2, size=checkpoints))
    groups = [(g, n) for g, n in cohort_sizes.items()] + [(None, n_never)]
    k = 0
    for g, n in groups:
        for _ in range(n):
            level = rng.normal(5.0, 1.0)
            scale = rng.uniform(0.5, 1.5) if hetero else 1.0
            for c in range(checkpoints):
                y = level + trend[c] + scale * rng.normal(0.0, 0.4)
                if g is not None and c >= g:
                    y -= effect(g, c)
                rows.append((f"i{k:04d}", g, c, float(y)))
            k += 1
    return rows


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write("instance,cohort,checkpoint,outcome\n")
        for inst, g, c, y in rows:
            f.write(f"{inst},{'' if g is None else g},{c},{y!r}\n")


def num(x):
    x = float(x)
    return None if math.isnan(x) else x


def reference(path):
    # parse with Python's own float() (correctly rounded), not a fast approximate parser
    with open(path, newline="") as f:
        records = [
            {
                "instance": r["instance"],
                "cohort": float(r["cohort"]) if r["cohort"] else np.nan,
                "checkpoint": int(r["checkpoint"]),
                "outcome": float(r["outcome"]),
            }
            for r in csv.DictReader(f)
        ]
    df = pd.DataFrame.from_records(records).set_index(["instance", "checkpoint"])
    att_gt = ATTgt(data=df, cohort_column="cohort", base_period="varying")
    att_gt.fit(
        formula="outcome",
        est_method="reg",
        control_group="never_treated",
        progress_bar=False,
    )
    cells = []
    for nt in att_gt._result_dict["full_sample"]["ATTgt_ntl"]:
        cells.append(
            {
                "cohort": int(nt.cohort),
                "base": int(nt.base_period),
                "checkpoint": int(nt.time),
                "att": num(nt.ATT),
                "se": num(nt.std_error),
            }
        )
    out = {"differences_version": differences.__version__, "cells": cells}
    for kind in ["event", "cohort", "time", "simple"]:
        # the aggregate frames have a three-level column index ending in "ATT" and
        # "std_error"; the row index is the event time, cohort or checkpoint ("simple"
        # has a single row and no key)
        agg = att_gt.aggregate(kind)
        att_col = [c for c in agg.columns if c[-1] == "ATT"][0]
        se_col = [c for c in agg.columns if c[-1] == "std_error"][0]
        out[kind] = [
            {
                "key": None if kind == "simple" else int(key),
                "att": num(row[att_col]),
                "se": num(row[se_col]),
            }
            for key, row in agg.iterrows()
        ]
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    panels = {
        # 4 cohorts of 30 plus 60 never-trained, 7 checkpoints, an effect that decays
        "a": simulate(
            seed=11,
            cohort_sizes={1: 30, 2: 30, 4: 30, 6: 30},
            n_never=60,
            checkpoints=7,
            effect=lambda g, c: 0.8 * 0.6 ** (c - g),
        ),
        # uneven cohorts, heteroskedastic noise, effects that differ by cohort
        "b": simulate(
            seed=23,
            cohort_sizes={2: 10, 3: 25, 5: 40, 7: 5},
            n_never=50,
            checkpoints=8,
            effect=lambda g, c: (0.3 + 0.1 * g) / (1 + c - g),
            hetero=True,
        ),
        # a small panel: 2 cohorts, 5 checkpoints, a constant effect
        "c": simulate(
            seed=37,
            cohort_sizes={1: 7, 3: 9},
            n_never=12,
            checkpoints=5,
            effect=lambda g, c: 0.5,
        ),
    }
    for name, rows in panels.items():
        path = OUT / f"panel_{name}.csv"
        write_csv(path, rows)
        ref = reference(path)
        with open(OUT / f"reference_{name}.json", "w") as f:
            json.dump(ref, f, indent=1)
            f.write("\n")
        print(f"{path.name}: {len(ref['cells'])} cells, {len(ref['event'])} event times")


if __name__ == "__main__":
    sys.exit(main())
