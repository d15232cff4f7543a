#!/usr/bin/env bash
# Issue 18's experiments still to run, each resuming from its ledger, each from a frozen
# snapshot of HEAD: the screen cells still to run (scripts/run_screen.sh). (The ResNet-20 0.05x
# confirmation and its search-length curve are finished and committed; rerunning a finished
# plan would only append a run line to its ledger.) Run it in
# the background and rerun it after any interruption:
#   nohup scripts/run_payoff.sh > payoff.log 2>&1 &
# WTC_JOBS (default 2) sets --jobs; on a lent GPU add WTC_ARGS="--device cuda" and more jobs.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/run_screen.sh
