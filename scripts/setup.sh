#!/usr/bin/env bash
# Idempotent setup for a fresh machine: a virtualenv in .venv with wtc and its dev tools, and
# the real Fashion-MNIST from Debian's dataset-fashion-mnist package where apt is available.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.wtc-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch/torchvision are pinned to releases this machine serves from disk (see README)
  .venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" \
    || .venv/bin/python -m pip install --quiet "torch<=2.14.1" "torchvision<=0.29.1"
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  touch "$stamp"
fi

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && \
         $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
    || echo "note: could not install dataset-fashion-mnist with apt; wtc will try torchvision's" \
            "download, or pass --data-root" >&2
fi
