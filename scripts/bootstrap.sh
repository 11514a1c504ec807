#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with the project installed.
# torch and torchvision are installed first as a known-good pair (timm needs torchvision); any
# torch >= 2.2 works, set HARNESS_TORCH_SPEC to choose another pair (e.g. a CUDA wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${HARNESS_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  "$VENV/bin/pip" install -q ${HARNESS_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
fi
"$VENV/bin/pip" install -q -e '.[test]'
