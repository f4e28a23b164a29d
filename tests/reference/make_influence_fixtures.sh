#!/usr/bin/env bash
# Regenerate tests/fixtures/influence/{tied,untied}: Mnemo trains each fixture spec and
# writes its checkpoints, instances and scores (`mnemo influence`); the PyTorch/captum
# reference (influence_reference.py, venv from requirements-influence.txt) then writes
# reference.csv from the same checkpoints and token ids. Only the inputs and the reference
# scores are committed (the Rust test recomputes Mnemo's side).
#
#   python3 -m venv tests/reference/.venv-influence
#   tests/reference/.venv-influence/bin/pip install -r tests/reference/requirements-influence.txt
#   tests/reference/make_influence_fixtures.sh [path/to/mnemo]
set -euo pipefail
cd "$(dirname "$0")/../.."
MNEMO=${1:-${CARGO_TARGET_DIR:-target}/release/mnemo}
PY=tests/reference/.venv-influence/bin/python
for kind in tied untied; do
  tmp=$(mktemp -d)
  "$MNEMO" influence --spec "tests/fixtures/influence/$kind.json" --out "$tmp" --quiet
  "$PY" tests/reference/influence_reference.py --dir "$tmp"
  dst=tests/fixtures/influence/$kind
  rm -rf "$dst"
  mkdir -p "$dst/checkpoints"
  cp "$tmp"/{spec.json,instances.csv,checkpoints.csv,reference.csv} "$dst/"
  cp "$tmp"/checkpoints/*.safetensors "$dst/checkpoints/"
  rm -rf "$tmp"
done
du -sh tests/fixtures/influence
