#!/usr/bin/env bash
# The main job on its default: set up, then search widths for the Fashion-MNIST ResNet-20 with
# MorphNet at the spec's own MACs, writing widths.json (extra arguments go to `wtc search`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/wtc search "$@"
