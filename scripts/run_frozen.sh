#!/usr/bin/env bash
# Run experiment plans one after another from a frozen snapshot of HEAD (a detached worktree),
# so commits and merges in this checkout cannot change the code under a running experiment's
# workers: scripts/run_frozen.sh PLAN.yaml[:OUT_DIR] ...  (OUT_DIR defaults to
# examples/results/<plan file name>). Each plan resumes from its ledger, so rerunning continues.
# WTC_JOBS (default 2) sets --jobs; WTC_ARGS adds options (e.g. WTC_ARGS="--reuse DIR").
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ $# -gt 0 ] || { echo "usage: scripts/run_frozen.sh PLAN.yaml[:OUT_DIR] ..." >&2; exit 2; }
snap=$(mktemp -d /tmp/wtc-frozen.XXXXXX)
git worktree add --detach "$snap/code" HEAD >/dev/null
trap 'git -C "$repo" worktree remove --force "$snap/code"; rm -rf "$snap"' EXIT
for item in "$@"; do
  plan=${item%%:*}
  out=${item#*:}; [ "$out" = "$item" ] && out=examples/results/$(basename "$plan" .yaml)
  echo "== $plan -> $out $(date -u +%H:%M:%S)"
  (cd "$snap/code" && PYTHONPATH="$snap/code" "$repo/.venv/bin/python" -m wtc.cli.main \
    experiment "$plan" --out "$repo/$out" --jobs "${WTC_JOBS:-2}" --progress plain ${WTC_ARGS:-}) \
    || echo "!! $plan stopped (exit $?)"
done
echo "== done $(date -u +%H:%M:%S)"
