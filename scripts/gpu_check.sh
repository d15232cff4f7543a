#!/usr/bin/env bash
# The GPU check, ready to run on a machine with CUDA (under 8 minutes on one H200), writing
# everything to one folder (default $OUT, else runs/gpu_check):
#   cuda-tests.txt   the tests marked `cuda` (bf16/fp16 autocast, channels_last, bit-exact
#                    resume, a one-process NCCL group)
#   train-step.txt   wtc's ResNet-18 and MobileNetV2 train step against torchvision's on the GPU
#   experiment.txt   a small `wtc experiment` with 4 units in flight on the one GPU, and its
#   ledger.jsonl, report.md
# Without CUDA it says so and exits 0. Uses .venv if there, else the machine's python3 (no
# install: the GPU machine may have no network).
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$DEST"
PY=""
for c in "${PYTHON:-}" .venv/bin/python /opt/torch/.venv/bin/python3 python3; do
  if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && "$c" -c "import torch" 2>/dev/null; then
    PY=$c; break
  fi
done
if [ -z "$PY" ]; then echo "gpu_check: no python with torch here; nothing to check"; exit 0; fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here ($PY: torch $("$PY" -c 'import torch; print(torch.__version__)')); nothing to check"
  exit 0
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
status=0
step() {  # name seconds command...
  local name=$1 limit=$2; shift 2
  echo "== $name" | tee -a "$DEST/summary.txt"
  if timeout "$limit" "$@" > "$DEST/$name.txt" 2>&1; then
    tail -n 4 "$DEST/$name.txt" | tee -a "$DEST/summary.txt"
  else
    echo "FAILED (exit $?): see $name.txt" | tee -a "$DEST/summary.txt"; tail -n 20 "$DEST/$name.txt"
    status=1
  fi
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
  "$PY" -c "import torch; print('torch', torch.__version__, 'bf16', torch.cuda.is_bf16_supported())"
} > "$DEST/summary.txt"
cat "$DEST/summary.txt"
step cuda-tests 150 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m cuda tests/trainer/test_cuda.py
step train-step 120 "$PY" benchmarks/bench_train_step.py --device cuda --batch 64 \
  --resolution 224 --rounds 6 --steps 5
step experiment 240 "$PY" -m wtc.cli.main experiment examples/gpu/gpu_check_plan.yaml \
  --out "$DEST/experiment" --device cuda --jobs 4 --threads 2 --progress none
cp "$DEST/experiment/ledger.jsonl" "$DEST/experiment/report.md" "$DEST/" 2>/dev/null
rm -rf "$DEST/experiment"
exit $status
