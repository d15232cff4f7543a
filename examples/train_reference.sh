#!/usr/bin/env bash
# Reference training run: ResNet-20 (Fashion-MNIST variant) on the full Fashion-MNIST.
#
#   target:  test top-1 >= 93%; measured 94.32% (2026-11-24, 2-core CPU)
#   recipe:  examples/train_resnet20_fmnist.yaml (20 epochs, SGD Nesterov 0.1, cosine,
#            1 warm-up epoch, wd 5e-4 off BN/bias, batch 128, crop+flip)
#   cost:    31.0 MMACs/image forward -> 3 x 31.0e6 x 59,904 x 20 = 1.115e14 training MACs;
#            on this 2-core CPU the trainer runs ~550 img/s (benchmarks/bench_train_loop.py),
#            i.e. ~2 min/epoch, ~40 min in total when the machine is otherwise idle.
#
# Usage:  examples/train_reference.sh [extra wtc train options, e.g. --epochs 2 for a smoke run]
# Resume an interrupted run by re-running with --resume (bit-exact on CPU).
# Several GPUs:  torchrun --nproc_per_node 4 -m wtc.cli.main train ... (same options)
set -euo pipefail
cd "$(dirname "$0")/.."
WTC=${WTC:-.venv/bin/wtc}

"$WTC" train specs/resnet20_fmnist.yaml \
    --config examples/train_resnet20_fmnist.yaml \
    --out runs/resnet20_fmnist "$@"

"$WTC" eval specs/resnet20_fmnist.yaml \
    --checkpoint runs/resnet20_fmnist/checkpoint.pt \
    --data fashion-mnist --json
# summary (top1, train_macs, seconds): runs/resnet20_fmnist/summary.json
# per-epoch metrics:                    runs/resnet20_fmnist/metrics.jsonl
