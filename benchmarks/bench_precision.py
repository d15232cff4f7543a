"""Training-step throughput by precision and memory format, in one process, interleaved rounds.

For each network (built by wtc at uniform widths for its MACs share), one full SGD step
(forward, backward, update) per timing, in the four runtimes: fp32 NCHW (wtc's CPU path
before `precision`), fp32 channels_last, bf16 NCHW, bf16 channels_last. Prints images/s and the
ratio of each to fp32 NCHW, and what `precision: auto` / `channels_last: auto` resolve to for
that network here (fp32 + channels_last for networks with grouped convolutions on CPU).
Target on the project's machine (AVX-512 BF16): bf16 + channels_last ≥ 2.5x on ResNet-20
(Fashion-MNIST) at 0.5x MACs.

`--compiled` adds a fifth runtime: the one `auto` picks, with the model compiled the way
`compile: true` does it (`wtc.trainer.compiled.compile_model`, inductor), its ratio to fp32 NCHW
and to the same runtime eager, and its compile time (the first step, with inductor's on-disk
caches off, as for a network it has not seen: every search trains new shapes). `compile: auto`
follows from that column.

Run: .venv/bin/python benchmarks/bench_precision.py [--threads 1] [--rounds 5] [--steps 3]
     [--compiled] [--only ResNet-20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")  # cold compile times

import torch
from torch import nn

import wtc
from wtc.trainer import Runtime, resolve_runtime
from wtc.trainer.compiled import compile_model
from wtc.trainer.precision import cpu_bf16_flags, has_grouped_conv

ROWS = [  # (label, spec, MACs share, batch)
    ("ResNet-20 FMNIST 0.5x", "specs/resnet20_fmnist.yaml", 0.5, 128),
    ("ResNet-20 FMNIST 0.1x", "specs/resnet20_fmnist.yaml", 0.1, 256),
    ("ShuffleNetV2 FMNIST", "specs/shufflenetv2_fmnist.yaml", 1.0, 128),
    ("MobileNetV2 32 px", "specs/mobilenetv2_cifar.yaml", 1.0, 32),
]
RUNTIMES = [Runtime("fp32", False), Runtime("fp32", True), Runtime("bf16", False),
            Runtime("bf16", True)]


def uniform_at(graph, share: float):  # type: ignore[no-untyped-def]
    """Uniform widths at `share` of the graph's MACs (None: its base widths)."""
    return (wtc.uniform_widths(graph, target_macs=round(share * wtc.count_macs(graph)))
            if share != 1.0 else None)


def build(spec: str, share: float, runtime: Runtime) -> tuple[nn.Module, torch.Tensor, int]:
    graph = wtc.compile_spec(wtc.load_spec(spec))
    widths = uniform_at(graph, share)
    torch.manual_seed(0)
    model = wtc.build_model(graph, widths).train()
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    s = graph.spec
    return model, torch.Size([s.input.channels, s.input.resolution, s.input.resolution]), s.classes


def step_seconds(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor, runtime: Runtime, steps: int) -> float:
    loss_fn = nn.CrossEntropyLoss()
    x = runtime.prepare_input(x)
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with runtime.autocast(torch.device("cpu")):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t) / steps


def bench_row(spec: str, share: float, batch: int, rounds: int, steps: int,
              compiled: Runtime | None) -> tuple[list[float], float | None]:
    """Median images/s of each runtime (interleaved, rotating order each round), then the
    compiled one's when `compiled` is its runtime; and the compile seconds."""
    nets, compile_s = [], None
    for rt in RUNTIMES + ([compiled] if compiled else []):
        model, shape, classes = build(spec, share, rt)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(batch, *shape)
        y = torch.randint(0, classes, (batch,))
        if len(nets) == len(RUNTIMES):  # the compiled one: its first step compiles
            model = compile_model(model)
            t = time.perf_counter()
            step_seconds(model, opt, x, y, rt, 1)
            compile_s = time.perf_counter() - t
        step_seconds(model, opt, x, y, rt, 1)  # warm-up (oneDNN primitive creation)
        nets.append((model, opt, x, y, rt))
    times: list[list[float]] = [[] for _ in nets]
    for r in range(rounds):
        order = list(range(len(nets)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            times[i].append(step_seconds(*nets[i], steps))
    return [batch / statistics.median(t) for t in times], compile_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--compiled", action="store_true",
                    help="also time the auto runtime compiled (inductor; ~1 min per row)")
    ap.add_argument("--only", default="", help="rows whose label contains this")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    flags = ", ".join(cpu_bf16_flags()) or "none"
    print(f"{args.threads} thread(s), {args.rounds} interleaved rounds of {args.steps} steps; "
          f"CPU bf16 flags: {flags}")
    extra = f"{'compiled':>10}{'vs eager':>9}{'compile s':>10}" if args.compiled else ""
    print(f"{'network':<24}{'fp32 img/s':>11}{'fp32+CL':>9}{'bf16':>9}{'bf16+CL':>9}{extra}"
          f"   auto chose")
    for label, spec, share, batch in ROWS:
        if args.only not in label:
            continue
        model, _, _ = build(spec, share, RUNTIMES[0])
        auto = resolve_runtime("auto", "auto", torch.device("cpu"),
                               grouped_conv=has_grouped_conv(model))
        ips, compile_s = bench_row(spec, share, batch, args.rounds, args.steps,
                                   auto if args.compiled else None)
        ratios = [v / ips[0] for v in ips]
        eager = ratios[RUNTIMES.index(auto)]
        chosen = f"{auto.precision}{'+CL' if auto.channels_last else ''}"
        more = (f"{ratios[-1]:>9.2f}x{ratios[-1] / eager:>8.2f}x{compile_s:>10.0f}"
                if compile_s is not None else "")
        print(f"{label:<24}{ips[0]:>11.0f}{ratios[1]:>8.2f}x{ratios[2]:>8.2f}x"
              f"{ratios[3]:>8.2f}x{more}   {chosen} ({eager:.2f}x)")


if __name__ == "__main__":
    main()
