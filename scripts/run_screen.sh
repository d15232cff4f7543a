#!/usr/bin/env bash
# Run the screen plans of examples/screen/ in order, each into examples/results/NAME (they resume
# from their ledgers, so rerunning this continues where it stopped; cells whose report is
# committed are skipped): scripts/run_screen.sh [NAME...]
# Each plan runs from a frozen snapshot of HEAD (scripts/run_frozen.sh), with `--reuse` of every
# sibling cell (same architecture) that already has a ledger, so a shared AutoSlim search
# (`share_targets`) runs once per architecture and the other cells copy it.
# WTC_UNTIL=HH:MM (UTC, today) ends the chain by then between units: each plan gets
# `--time-limit` for the time left, and none starts with under a minute left.
set -uo pipefail
cd "$(dirname "$0")/.."
order=${*:-screen_shufflenetv2_0.05x screen_mobilenetv2_0.1x screen_resnet56_0.1x \
  screen_resnet20_0.25x screen_shufflenetv2_0.25x screen_vgg11_0.05x screen_mobilenetv2_0.05x \
  screen_resnet56_0.05x screen_mobilenetv2_0.25x screen_resnet56_0.25x screen_vgg11_0.25x \
  screen_mobilenetv2_0.02x screen_resnet56_0.02x screen_resnet20_0.02x screen_shufflenetv2_0.02x \
  screen_vgg11_0.02x}
for name in $order; do
  arch=${name%_*}
  # a committed cell is finished: rerunning it would only append a run line to its ledger
  git ls-files --error-unmatch "examples/results/$name/report.md" >/dev/null 2>&1 && continue
  reuse=""
  for sib in examples/results/"$arch"_*; do
    [ "$sib" != "examples/results/$name" ] && [ -f "$sib/ledger.jsonl" ] && reuse+=" --reuse $PWD/$sib"
  done
  limit=""
  if [ -n "${WTC_UNTIL:-}" ]; then
    left=$(( $(date -u -d "$WTC_UNTIL" +%s) - $(date -u +%s) ))
    [ "$left" -lt 60 ] && { echo "== $WTC_UNTIL reached: $name and the rest not started"; break; }
    limit=" --time-limit ${left}s"
  fi
  WTC_ARGS="${WTC_ARGS:-}$reuse$limit" scripts/run_frozen.sh "examples/screen/$name.yaml"
done
