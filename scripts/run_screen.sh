#!/usr/bin/env bash
# Run the screen plans of examples/screen/ in order, each into examples/results/NAME (they resume
# from their ledgers, so rerunning this continues where it stopped): scripts/run_screen.sh [NAME...]
# The code runs from a frozen snapshot of HEAD (a detached worktree), so commits and merges in
# this checkout cannot change the code under a running experiment's workers.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
order=${*:-screen_resnet20_0.05x screen_shufflenetv2_0.05x screen_mobilenetv2_0.1x \
  screen_resnet20_0.25x screen_shufflenetv2_0.25x screen_vgg11_0.05x screen_mobilenetv2_0.05x}
snap=$(mktemp -d /tmp/wtc-screen.XXXXXX)
git worktree add --detach "$snap/code" HEAD >/dev/null
trap 'git -C "$repo" worktree remove --force "$snap/code"; rm -rf "$snap"' EXIT
for name in $order; do
  echo "== $name $(date -u +%H:%M:%S)"
  (cd "$snap/code" && PYTHONPATH="$snap/code" "$repo/.venv/bin/python" -m wtc.cli.main \
    experiment "examples/screen/$name.yaml" --out "$repo/examples/results/$name" --jobs 2 \
    --progress plain) || echo "!! $name stopped (exit $?)"
done
echo "== done $(date -u +%H:%M:%S)"
