#!/usr/bin/env bash
# Set up, lint, and run the default test suite on 2 workers (slow tests are opt-in: -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
OMP_NUM_THREADS=1 exec .venv/bin/python -m pytest -n 2 --durations=15 "$@"
