#!/usr/bin/env bash
# GPU benchmark: `mnemo bench train` (the TinyMem-size benchmark: batch 32, context 150,
# 4 heads) at several model sizes on each backend, written to one JSON with training and
# evaluation tokens/s per backend and size. Meant for a machine with an NVIDIA GPU (CUDA
# driver installed); runs anywhere, recording a backend that fails (not compiled, no
# adapter, out of memory, timed out) as an error instead of stopping.
#
#   tests/bench/gpu/run.sh [OUT.json]          (default tests/bench/gpu/gpu.json)
#
# Settings (environment):
#   MNEMO_GPU_BACKENDS  backends to time, in order        (default "cuda wgpu cpu")
#   MNEMO_GPU_SIZES     sizes as D_MODELxLAYERS            (default "128x2 256x4 256x8";
#                       specs allow d_model 32-256 and 1-8 layers)
#   MNEMO_GPU_STEPS     timed steps per run, after 1 warm-up (default 5)
#   MNEMO_GPU_TIMEOUT   seconds per run before it counts as an error (default 1200)
#   MNEMO_GPU_FEATURES  cargo features of the build        (default "cuda"; "" without CUDA)
#   MNEMO_BIN           an already built mnemo binary (skips the build)
set -euo pipefail
cd "$(dirname "$0")/../../.."
out="${1:-tests/bench/gpu/gpu.json}"
backends="${MNEMO_GPU_BACKENDS:-cuda wgpu cpu}"
sizes="${MNEMO_GPU_SIZES:-128x2 256x4 256x8}"
steps="${MNEMO_GPU_STEPS:-5}"
limit="${MNEMO_GPU_TIMEOUT:-1200}"
features="${MNEMO_GPU_FEATURES-cuda}"

if [ -z "${MNEMO_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mnemo-target}"
  echo "== building the CLI (features: ${features:-default})" >&2
  cargo build --release -q -p mnemo-cli ${features:+--features "$features"}
  MNEMO_BIN="$CARGO_TARGET_DIR/release/mnemo"
fi

runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
i=0
for size in $sizes; do
  d="${size%x*}"; layers="${size#*x}"
  for backend in $backends; do
    i=$((i + 1))
    tag=$(printf '%03d' "$i")
    echo "== $backend, d_model $d, $layers layers" >&2
    printf '%s %s %s\n' "$backend" "$d" "$layers" > "$runs/$tag.args"
    set +e
    timeout "$limit" "$MNEMO_BIN" bench train --json --model tinymem --backend "$backend" \
      --d-model "$d" --layers "$layers" --steps "$steps" > "$runs/$tag.json" 2> "$runs/$tag.err"
    echo $? > "$runs/$tag.rc"
    set -e
    tail -n 1 "$runs/$tag.err" >&2 || true
  done
done

python3 - "$runs" "$out" "$steps" "$limit" "$MNEMO_BIN" <<'PY'
import json, os, subprocess, sys, datetime
runs, out, steps, limit, binary = sys.argv[1:6]
def gpu_name():
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
rows = []
for tag in sorted(f[:-5] for f in os.listdir(runs) if f.endswith(".args")):
    backend, d, layers = open(f"{runs}/{tag}.args").read().split()
    rc = int(open(f"{runs}/{tag}.rc").read())
    row = {"backend": backend, "d_model": int(d), "n_layers": int(layers)}
    err = open(f"{runs}/{tag}.err", errors="replace").read().strip().splitlines()
    if rc == 0:
        got = json.load(open(f"{runs}/{tag}.json"))["rows"][0]
        for k in ("device", "train_tokens_per_s", "eval_tokens_per_s", "ms_per_step",
                  "eval_sequences_per_s", "timed_steps", "tokens_per_step", "peak_rss_mib"):
            row[k] = got[k]
    else:
        reason = f"timed out after {limit} s" if rc == 124 else \
            next((l[len("error: "):] for l in reversed(err) if l.startswith("error: ")),
                 err[-1] if err else f"exit {rc}")
        row["error"] = reason
    rows.append(row)
doc = {
    "benchmark": "mnemo bench train --model tinymem (batch 32, context 150, 4 heads)",
    "timed_steps": int(steps),
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "mnemo": subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip(),
    "gpu": gpu_name(),
    "cpus": os.cpu_count(),
    "rows": rows,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
for r in rows:
    what = f"{r['train_tokens_per_s']:.0f} train tok/s, {r['eval_tokens_per_s']:.0f} eval tok/s" \
        if "error" not in r else "error: " + r["error"]
    print(f"{r['backend']:>5} d_model {r['d_model']:>5} x {r['n_layers']:>2} layers: {what}", file=sys.stderr)
print(f"wrote {out}", file=sys.stderr)
PY
