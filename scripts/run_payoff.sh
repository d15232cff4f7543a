#!/usr/bin/env bash
# Issue 18's experiments in their order, each resuming from its ledger (a finished one runs
# nothing), each from a frozen snapshot of HEAD: the ResNet-20 0.05x confirmation, then the
# screen cells still to run (scripts/run_screen.sh), then the confirmation's search-length
# curve. Run it in the background and rerun it after any interruption:
#   nohup scripts/run_payoff.sh > payoff.log 2>&1 &
# WTC_JOBS (default 2) sets --jobs; on a lent GPU add WTC_ARGS="--device cuda" and more jobs.
set -uo pipefail
cd "$(dirname "$0")/.."
results=$PWD/examples/results
WTC_ARGS="${WTC_ARGS:-} --reuse $results/screen_resnet20_0.05x" \
  scripts/run_frozen.sh examples/confirm/confirm_resnet20_0.05x.yaml
scripts/run_screen.sh
WTC_ARGS="${WTC_ARGS:-} --reuse $results/confirm_resnet20_0.05x" \
  scripts/run_frozen.sh examples/confirm/curve_resnet20_0.05x.yaml
