"""Train-step time of wtc's built ResNet-18 and MobileNetV2 against torchvision's, same batch,
same process, interleaved rounds. Prints the ratio wtc / torchvision (target ≤ 1.02).

Run: .venv/bin/python benchmarks/bench_train_step.py [--batch 16] [--resolution 128] [--rounds 8]
     [--device cuda]   (on a GPU: bf16 autocast + channels_last for both)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision
from torch import nn

import wtc


def step_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt, steps: int) -> float:
    loss_fn = nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    sync()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (cuda: bf16 autocast and "
                    "channels_last for both networks)")
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    fmt = torch.channels_last if dev.type == "cuda" else torch.contiguous_format
    x = torch.randn(args.batch, 3, args.resolution, args.resolution, device=dev)
    x = x.contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (args.batch,), device=dev)
    print(f"{dev}, batch {args.batch}, {args.resolution} px, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved rounds of {args.steps} steps")
    for spec, factory in (("specs/resnet18.yaml", torchvision.models.resnet18),
                          ("specs/mobilenetv2.yaml", torchvision.models.mobilenet_v2)):
        ours = wtc.build_model(wtc.compile_spec(wtc.load_spec(spec))).train()
        theirs = factory().train()
        ours.to(dev, memory_format=fmt)
        theirs.to(dev, memory_format=fmt)
        opts = {id(m): torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
                for m in (ours, theirs)}
        for m in (ours, theirs):  # warm-up
            step_time(m, x, y, opts[id(m)], 2)
        a, b = [], []
        for r in range(args.rounds):
            order = (ours, theirs) if r % 2 == 0 else (theirs, ours)
            for m in order:
                (a if m is ours else b).append(step_time(m, x, y, opts[id(m)], args.steps))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{spec:<24} wtc {ma * 1e3:8.1f} ms/step   torchvision {mb * 1e3:8.1f} ms/step   "
              f"ratio {ma / mb:.3f}")


if __name__ == "__main__":
    main()
