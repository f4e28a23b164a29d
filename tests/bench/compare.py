"""Mnemo against PyTorch, natively and in the browser, in one run (see tests/bench/compare).

Runs, on the same model, data and number of threads: `mnemo bench export-init` (initial
weights, data, order), the PyTorch reference (tests/bench/torch_ref.py), `mnemo bench
train --json` on each native CPU backend of the build (one process each, so each peak
memory is its own), and the browser build in headless Chromium (tests/bench/
browser_bench.mjs), and TensorFlow.js 4.22 as the browser peer on its wasm, webgl and
webgpu backends in the same Chromium (tests/bench/tfjs_bench.mjs). Checks that PyTorch,
and at least one TensorFlow.js backend, from Mnemo's initial weights, get the first
training step's loss to within 1e-4 (and fails loudly if not), prints a table and
writes OUT_DIR/bench.json. Standard library only.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

LOSS_TOLERANCE = 1e-4


def run_json(cmd, env=None, label=""):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{label or cmd[0]} failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return json.loads(res.stdout)


def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def result_pool_same(native_pool, browser_pool):
    return native_pool["same_numbers"] and (browser_pool is None or browser_pool["same_table"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", required=True, help="the default build of mnemo (the headline figures)")
    ap.add_argument(
        "--variant", action="append", default=[], metavar="LABEL=PATH",
        help="another build of mnemo (e.g. with extra features) timed beside it, flex only",
    )
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=10, help="timed training steps (native, PyTorch)")
    ap.add_argument("--browser-steps", type=int, default=8, help="training steps in the browser")
    ap.add_argument("--rounds", type=int, default=2, help="native and PyTorch runs; the best counts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-tfjs", action="store_true", help="no TensorFlow.js peer (implied by --no-browser)")
    args = ap.parse_args()
    if args.steps < 1 or args.browser_steps < 2 or args.rounds < 1:
        ap.error("--steps and --rounds must be at least 1, --browser-steps at least 2")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    load_before = os.getloadavg()
    threads = str(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)

    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", file=sys.stderr)
    init = out / "init"
    subprocess.run(
        [args.mnemo, "bench", "export-init", "--out", str(init), "--steps", str(args.steps)],
        check=True,
    )
    spec = json.loads((init / "bench.json").read_text())
    tokens_per_step = spec["first_batch"]["n_tokens"]

    # Native backends compiled into this build, and PyTorch, in alternating rounds.
    backends = []
    for b in ("flex", "ndarray"):
        probe = subprocess.run(
            [args.mnemo, "bench", "train", "--steps", "1", "--model", "demo", "--backend", b, "--json"],
            capture_output=True, text=True, env=env,
        )
        if probe.returncode == 0:
            backends.append(b)
    if not backends:
        raise RuntimeError("no native CPU backend answered `mnemo bench train`")
    native_runs = {b: [] for b in backends}
    variants = [v.split("=", 1) for v in args.variant]
    variant_runs = {label: [] for label, _ in variants}
    torch_runs = []
    for r in range(args.rounds):
        for label, path in variants:
            print(f"round {r + 1}/{args.rounds}: Mnemo native, flex, build +{label}", file=sys.stderr)
            doc = run_json(
                [path, "bench", "train", "--steps", str(args.steps), "--model", "tinymem", "--backend", "flex", "--json"],
                env, f"{path} bench train",
            )
            variant_runs[label].append(doc["rows"][0])
        for b in backends:
            print(f"round {r + 1}/{args.rounds}: Mnemo native, {b}", file=sys.stderr)
            doc = run_json(
                [args.mnemo, "bench", "train", "--steps", str(args.steps), "--model", "tinymem", "--backend", b, "--json"],
                env, f"mnemo bench train --backend {b}",
            )
            native_runs[b].append(doc["rows"][0])
        print(f"round {r + 1}/{args.rounds}: PyTorch", file=sys.stderr)
        torch_runs.append(
            run_json([sys.executable, str(here / "torch_ref.py"), "--data", str(init), "--threads", threads], env, "torch_ref.py")
        )
    best = lambda runs, key: max(runs, key=lambda x: x[key] or 0)  # noqa: E731
    native = {b: best(runs, "train_tokens_per_s") for b, runs in native_runs.items()}
    native_eval = {b: best(runs, "eval_sequences_per_s")["eval_sequences_per_s"] for b, runs in native_runs.items()}
    torch = best(torch_runs, "train_tokens_per_s")
    torch_eval = max(t["eval_sequences_per_s"] for t in torch_runs)
    best_backend = max(native, key=lambda b: native[b]["train_tokens_per_s"])
    nat = native[best_backend]

    browser = None
    if not args.no_browser:
        print(f"browser (headless Chromium, CPU path): {args.browser_steps} steps", file=sys.stderr)
        browser = run_json(
            ["node", str(here / "browser_bench.mjs"), str(init / "text.txt"), str(args.browser_steps), str(tokens_per_step)],
            env, "browser_bench.mjs",
        )
    # TensorFlow.js as the browser peer (issue 20): the same model, data, order and AdamW
    # from the same initial weights, on each of its backends in turn.
    tfjs = None
    if not args.no_browser and not args.no_tfjs:
        print(f"TensorFlow.js in Chromium (wasm, webgl, webgpu): {args.browser_steps} steps", file=sys.stderr)
        tfjs = run_json(["node", str(here / "tfjs_bench.mjs"), str(init), str(args.browser_steps)], env, "tfjs_bench.mjs")
    tfjs_ok = [
        b for b in (tfjs["backends"] if tfjs else [])
        if not b.get("error") and b.get("first_step_loss_abs_diff") is not None
        and b["first_step_loss_abs_diff"] <= LOSS_TOLERANCE
    ]
    tfjs_best = max(tfjs_ok, key=lambda b: b["train_tokens_per_s"]) if tfjs_ok else None
    tfjs_best_eval = max(tfjs_ok, key=lambda b: b["eval_sequences_per_s"]) if tfjs_ok else None
    # The pool of workers (issue 20): the counterfactual demo's ensemble on one thread or
    # worker and on `--threads` of them, with the results compared for equality.
    pool_models = "8"
    print(f"pool: counterfactual demo, {pool_models} models, 1 vs {threads} threads/workers", file=sys.stderr)
    native_pool = run_json(
        [args.mnemo, "bench", "counterfactual", "--models", pool_models, "--threads", threads, "--json"],
        env, "mnemo bench counterfactual",
    )
    browser_pool = None
    if not args.no_browser:
        browser_pool = run_json(["node", str(here / "pool_bench.mjs"), pool_models, threads], env, "pool_bench.mjs")
    load_after = os.getloadavg()

    # The exactness check comes from the first PyTorch run (every run starts from the same state).
    check = torch_runs[0]["check"]
    diff = check["first_step_loss_abs_diff"]
    failures = []
    if not check["first_batch_identical"]:
        failures.append("PyTorch's first batch differs from Mnemo's")
    if diff is None or not diff <= LOSS_TOLERANCE:
        failures.append(f"first-step loss differs by {diff} (tolerance {LOSS_TOLERANCE})")
    if not result_pool_same(native_pool, browser_pool):
        failures.append("the pool of threads or workers changed the counterfactual numbers")
    if tfjs is not None and tfjs_best is None:
        seen = "; ".join(
            f"{b['backend']}: {b['error']}" if b.get("error") else f"{b['backend']}: |diff| {b.get('first_step_loss_abs_diff')}"
            for b in tfjs["backends"]
        )
        failures.append(f"no TensorFlow.js backend got the first-step loss to within {LOSS_TOLERANCE} ({seen})")
    if not check["eval_surprisal_max_abs_diff"] <= LOSS_TOLERANCE:
        failures.append(f"per-sequence surprisal differs by {check['eval_surprisal_max_abs_diff']} (tolerance {LOSS_TOLERANCE})")

    torch_tps = torch["train_tokens_per_s"]
    native_tps = nat["train_tokens_per_s"]
    browser_tps = browser["train_tokens_per_s"] if browser else None
    browser_eval = browser["eval_sequences_per_s"] if browser else None
    tfjs_tps = tfjs_best["train_tokens_per_s"] if tfjs_best else None
    tfjs_eval = tfjs_best_eval["eval_sequences_per_s"] if tfjs_best_eval else None
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "model": "2 layers, d_model 128, 4 heads, context 150, batch 32 (150 target tokens per sequence)",
        "threads": args.threads,
        "timed_steps": args.steps,
        "browser_steps": args.browser_steps if browser else None,
        "rounds": args.rounds,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "torch_version": torch["torch_version"],
        "torch_train_tokens_per_s": torch_tps,
        "native_train_tokens_per_s": native_tps,
        "native_best_backend": best_backend,
        "browser_train_tokens_per_s": browser_tps,
        "ratio_native_vs_torch": ratio(native_tps, torch_tps),
        "ratio_browser_vs_native": ratio(browser_tps, native_tps),
        "ratio_browser_vs_torch": ratio(browser_tps, torch_tps),
        "tfjs_version": tfjs["tfjs_version"] if tfjs else None,
        "tfjs_train_tokens_per_s": tfjs_tps,
        "tfjs_best_backend": tfjs_best["backend"] if tfjs_best else None,
        "tfjs_eval_sequences_per_s": tfjs_eval,
        "tfjs_eval_best_backend": tfjs_best_eval["backend"] if tfjs_best_eval else None,
        "ratio_browser_vs_tfjs": ratio(browser_tps, tfjs_tps),
        "ratio_browser_vs_tfjs_eval": ratio(browser_eval, tfjs_eval),
        "torch_eval_sequences_per_s": torch_eval,
        "native_eval_sequences_per_s": native_eval[best_backend],
        "browser_eval_sequences_per_s": browser_eval,
        "ratio_native_vs_torch_eval": ratio(native_eval[best_backend], torch_eval),
        "ratio_browser_vs_native_eval": ratio(browser_eval, native_eval[best_backend]),
        "native_pool_speedup": native_pool["speedup"],
        "browser_pool_speedup": browser_pool["speedup"] if browser_pool else None,
        "pool_same_numbers": result_pool_same(native_pool, browser_pool),
        "pool": {"native": native_pool, "browser": browser_pool},
        "torch_peak_rss_mib": torch["peak_rss_mib"],
        "native_peak_rss_mib": nat["peak_rss_mib"],
        "browser_peak_rss_mib": browser["peak_rss_mib"] if browser else None,
        "first_step_loss_mnemo": check["losses_mnemo"][0],
        "first_step_loss_torch": check["losses_torch"][0],
        "first_step_loss_abs_diff": diff,
        "first_step_loss_tolerance": LOSS_TOLERANCE,
        "losses_mnemo": check["losses_mnemo"],
        "losses_torch": check["losses_torch"],
        "loss_abs_diff": check["loss_abs_diff"],
        "first_batch_identical": check["first_batch_identical"],
        "eval_surprisal_max_abs_diff": check["eval_surprisal_max_abs_diff"],
        "check_passed": not failures,
        "failures": failures,
        "torch": torch,
        "torch_runs": torch_runs,
        "native": native,
        "native_runs": native_runs,
        "browser": browser,
        "tfjs": tfjs,
        "native_variants": {
            label: {
                "train_tokens_per_s": best(runs, "train_tokens_per_s")["train_tokens_per_s"],
                "ms_per_step": best(runs, "train_tokens_per_s")["ms_per_step"],
                "eval_sequences_per_s": best(runs, "eval_sequences_per_s")["eval_sequences_per_s"],
                "peak_rss_mib": best(runs, "train_tokens_per_s")["peak_rss_mib"],
                "runs": runs,
            }
            for label, runs in variant_runs.items()
        },
    }
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        (f"PyTorch {torch['torch_version'].split('+')[0]} (CPU)", torch_tps, torch["ms_per_step"], torch_eval, torch["peak_rss_mib"]),
    ]
    for b in backends:
        n = native[b]
        rows.append((f"Mnemo native, {n['label']}", n["train_tokens_per_s"], n["ms_per_step"], native_eval[b], n["peak_rss_mib"]))
    for label, v in result["native_variants"].items():
        rows.append((f"Mnemo native, flex, only {label}", v["train_tokens_per_s"], v["ms_per_step"], v["eval_sequences_per_s"], v["peak_rss_mib"]))
    if browser:
        rows.append(("Mnemo in Chromium, CPU (wasm)", browser_tps, browser["ms_per_step"], browser_eval, browser["peak_rss_mib"]))
    for b in tfjs["backends"] if tfjs else []:
        name = f"TensorFlow.js {'.'.join(str(tfjs['tfjs_version'] or '4.22').split('.')[:2])} {b['backend']} in Chromium"
        if b.get("error"):
            rows.append((name, None, None, None, None))
        else:
            rows.append((name, b["train_tokens_per_s"], b["ms_per_step"], b["eval_sequences_per_s"], b.get("peak_rss_mib")))
    head = f"{'':<44} {'tokens/s':>9} {'ms/step':>8} {'eval seq/s':>10} {'peak MiB':>9} {'train vs torch':>15} {'vs native':>10} {'eval vs torch':>14} {'vs native':>10}"
    print(head)
    for name, tps, ms, ev, mem in rows:
        print(
            f"{name:<44} {fmt(tps):>9} {fmt(ms):>8} {fmt(ev, 1):>10} {fmt(mem):>9} "
            f"{fmt(ratio(tps, torch_tps), 2) + 'x':>15} {fmt(ratio(tps, native_tps), 2) + 'x':>10} "
            f"{fmt(ratio(ev, torch_eval), 2) + 'x':>14} {fmt(ratio(ev, native_eval[best_backend]), 2) + 'x':>10}"
        )
    print(
        f"threads {args.threads}; best of {args.rounds} runs of {args.steps} timed steps (after one warm-up) natively and in PyTorch; "
        + (f"{args.browser_steps - 1} timed steps in the browser (single-threaded wasm); " if browser else "")
        + f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(
        f"first training step's loss from the same initial weights: Mnemo {check['losses_mnemo'][0]:.7f}, "
        f"PyTorch {check['losses_torch'][0]:.7f}, |diff| {diff:.2e} (tolerance {LOSS_TOLERANCE:g}); "
        f"steps 1-{len(check['loss_abs_diff'])}: {', '.join(f'{d:.1e}' for d in check['loss_abs_diff'])}; "
        f"per-sequence surprisal max |diff| {check['eval_surprisal_max_abs_diff']:.1e}; "
        f"first batch identical: {check['first_batch_identical']}"
    )
    print(
        f"counterfactual demo ({native_pool['models']} models) on {native_pool['threads']} threads natively: "
        f"{native_pool['speedup']:.2f}x one thread"
        + (f"; on {browser_pool['workers']} workers in the browser: {browser_pool['speedup']:.2f}x one worker "
           f"({browser_pool['memory_mib']} MiB per worker)" if browser_pool else "")
        + f"; same numbers: {result['pool_same_numbers']}"
    )
    if tfjs:
        parts = []
        for b in tfjs["backends"]:
            if b.get("error"):
                parts.append(f"{b['backend']} failed: {b['error']}")
            else:
                threads_note = f", {b['threads']} threads" if b.get("threads") else ""
                cap = f", {b['timed_steps']} timed steps" + (" (capped)" if b.get("capped") or b.get("steps_note") else "")
                parts.append(
                    f"{b['backend']} loss {b['first_step_loss']:.7f} (|diff| {b['first_step_loss_abs_diff']:.1e}{threads_note}{cap})"
                )
        print(
            f"TensorFlow.js {tfjs['tfjs_version']}: " + "; ".join(parts)
            + (f"; best {tfjs_best['backend']}: Mnemo's browser build {fmt(ratio(browser_tps, tfjs_tps), 2)}x its tokens/s"
               if tfjs_best else "; no backend agrees with Mnemo's first-step loss")
        )
    print(f"wrote {out / 'bench.json'}")
    if failures:
        print("EXACTNESS CHECK FAILED: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
