#!/usr/bin/env bash
# Regenerate tests/fixtures/hf: the tiny random transformers models with their logits and
# greedy continuations (gpt2, neox, neox-seq), and the export fixture (Mnemo writes a GPT-2
# folder from a seeded model; transformers computes its logits).
#
#   python3 -m venv tests/reference/.venv-hf
#   tests/reference/.venv-hf/bin/pip install -r tests/reference/requirements-hf.txt
#   tests/reference/make_hf_fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=tests/reference/.venv-hf/bin/python
"$PY" tests/reference/hf_reference.py models
rm -rf tests/fixtures/hf/export
MNEMO_WRITE_HF_EXPORT=1 cargo test --release -p mnemo-core --test hf exported_model
"$PY" tests/reference/hf_reference.py export-check tests/fixtures/hf/export
cargo test --release -p mnemo-core --test hf
du -sh tests/fixtures/hf
