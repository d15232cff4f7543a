#!/usr/bin/env bash
# Run the screen plans of examples/screen/ in order, each into examples/results/NAME (they resume
# from their ledgers, so rerunning this continues where it stopped): scripts/run_screen.sh [NAME...]
# The code runs from a frozen snapshot of HEAD (scripts/run_frozen.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
order=${*:-screen_shufflenetv2_0.05x screen_mobilenetv2_0.1x screen_resnet56_0.1x \
  screen_resnet20_0.25x screen_shufflenetv2_0.25x screen_vgg11_0.05x screen_mobilenetv2_0.05x}
plans=()
for name in $order; do plans+=("examples/screen/$name.yaml"); done
exec scripts/run_frozen.sh "${plans[@]}"
