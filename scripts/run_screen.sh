#!/usr/bin/env bash
# Run the screen plans of examples/screen/ in order, each into examples/results/NAME (they resume
# from their ledgers, so rerunning this continues where it stopped): scripts/run_screen.sh [NAME...]
set -uo pipefail
cd "$(dirname "$0")/.."
order=${*:-screen_resnet20_0.1x screen_shufflenetv2_0.1x screen_vgg11_0.1x screen_resnet20_0.05x \
  screen_shufflenetv2_0.05x screen_mobilenetv2_0.1x}
for name in $order; do
  echo "== $name $(date -u +%H:%M:%S)"
  .venv/bin/wtc experiment "examples/screen/$name.yaml" --out "examples/results/$name" --jobs 2 \
    --progress plain || echo "!! $name stopped (exit $?)"
done
echo "== done $(date -u +%H:%M:%S)"
