"""Throughput of the wtc trainer (`wtc.trainer.fit`) against a minimal hand-written PyTorch loop.

Same model (ResNet-20 for Fashion-MNIST when the spec builds, else a small CNN), same in-memory
data (1x28x28, no augmentation so both loops do the same work), same optimizer, same threads.
Runs are interleaved (wtc, minimal, wtc, minimal, ...) so drift in machine load hits both.
fit's time includes everything it does per epoch: LR schedule, metrics, checkpoint-free
evaluation of a small (256-image) test set.

    .venv/bin/python benchmarks/bench_train_loop.py [--images 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from wtc.data import make_data
from wtc.trainer import TrainConfig, fit

SPEC = Path(__file__).resolve().parents[1] / "specs" / "resnet20_fmnist.yaml"


def make_model(seed: int) -> tuple[nn.Module, str]:
    torch.manual_seed(seed)
    try:
        import wtc

        graph = wtc.compile_spec(wtc.load_spec(SPEC))
        return wtc.build_model(graph, wtc.base_widths(graph)), "resnet20_fmnist"
    except Exception:
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(), nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, 10)), "small-cnn"


def run_wtc(cfg: TrainConfig, data) -> float:
    model, _ = make_model(0)
    t = time.perf_counter()
    res = fit(model, data, cfg, forward_macs=1)
    dt = time.perf_counter() - t
    return res.summary["images_seen"] / dt


def run_minimal(cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor) -> float:
    model, _ = make_model(0)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    bs = cfg.data.batch_size
    steps = len(y) // bs
    t = time.perf_counter()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(y))
        for i in range(steps):
            j = perm[i * bs:(i + 1) * bs]
            loss = F.cross_entropy(model(x[j]), y[j])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    dt = time.perf_counter() - t
    return steps * bs * cfg.epochs / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()

    threads = torch.get_num_threads()
    cfg = TrainConfig(data="synthetic", epochs=1, batch_size=args.batch_size, device="cpu",
                      synthetic_size=args.images, synthetic_test_size=256,
                      synthetic_channels=1, synthetic_resolution=28, synthetic_classes=10,
                      threads=threads)
    data = make_data(cfg.data)
    x = ((data.train.images.float() / 255.0) - 0.5) / 0.25
    y = data.train.labels
    _, name = make_model(0)
    print(f"model {name}, {args.images} images 1x28x28, batch {args.batch_size}, "
          f"{threads} threads, {args.repeats} interleaved repeats")

    small = cfg.model_copy(update={"data": cfg.data.model_copy(
        update={"synthetic_size": 2 * args.batch_size})})
    run_wtc(small, make_data(small.data))  # warm-up both paths (allocator, kernels)
    run_minimal(small, x[:2 * args.batch_size], y[:2 * args.batch_size])

    ours, ref = [], []
    for r in range(args.repeats):
        ours.append(run_wtc(cfg, data))
        ref.append(run_minimal(cfg, x, y))
        print(f"  repeat {r + 1}: wtc fit {ours[-1]:8.1f} img/s   minimal loop "
              f"{ref[-1]:8.1f} img/s")
    a, b = statistics.median(ours), statistics.median(ref)
    print(f"median: wtc fit {a:.1f} img/s, minimal loop {b:.1f} img/s, ratio {a / b:.3f} "
          "(target >= 0.95)")


if __name__ == "__main__":
    main()
