"""Why narrow networks do not turn MACs savings into wall time: training MACs per second of one
network at decreasing uniform widths, and where its step goes, in one process.

ResNet-20 for Fashion-MNIST built by wtc at uniform widths for each share of its base MACs,
one SGD step (forward, backward, fused update) per timing at batch 128, in the runtime `auto`
picks here. For each share: ms/step, training MACs/s and their ratio to the full network's,
and the step's split by operator family from torch.profiler (convolution forward + backward,
batch norm forward + backward, everything else). A convolution's work grows with its input
channels times its output pixels, batch norm's, ReLU's and the residual adds' only with the
output pixels, so as widths shrink the memory-bound per-pixel operators take over the step and
MACs/s falls: the cheapest proxies (8-32 channels at 14 px) and the lowest budgets' targets run
at a fraction of the full network's rate however the step is scheduled. This is the measured
reason behind `bench_proxy_throughput.py`'s ratios, and why a plan's wall time is not its
MACs times one rate (a 0.05x ResNet-20 trains at ~a tenth of the full network's MACs/s).

Run: .venv/bin/python benchmarks/bench_width_rate.py [--threads 1] [--rounds 3] [--steps 5]
     [--shares 1,0.5,0.25,0.1,0.05,0.02]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from bench_precision import build, step_seconds, uniform_at

import wtc
from wtc.trainer import resolve_runtime
from wtc.trainer.loop import fused_sgd

SPEC = Path(__file__).resolve().parents[1] / "specs" / "resnet20_fmnist.yaml"
CPU = torch.device("cpu")
FAMILIES = {"convolution": ("convolution",), "batch norm": ("batch_norm",)}


def make_step(graph, share: float, batch: int) -> tuple[Callable[[int], float], int, str]:
    """A closure running `steps` SGD steps (bench_precision's) → seconds; the training MACs
    of one step; the runtime used."""
    rt = resolve_runtime("auto", "auto", CPU)
    model, shape, classes = build(str(SPEC), share, rt)
    x, y = torch.rand(batch, *shape), torch.randint(0, classes, (batch,))
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, **fused_sgd(params, CPU))

    def run(steps: int) -> float:
        return step_seconds(model, opt, x, y, rt, steps) * steps

    run(1)  # warm-up (oneDNN primitives)
    macs = 3 * wtc.count_macs(graph, uniform_at(graph, share)) * batch
    return run, macs, f"{rt.precision}{' + CL' if rt.channels_last else ''}"


def split(run: Callable[[int], float], steps: int) -> dict[str, float]:
    """Share of the step's self CPU time per operator family (profiled)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run(steps)
    total, by = 0.0, dict.fromkeys((*FAMILIES, "other"), 0.0)
    for ev in prof.key_averages():
        t = ev.self_cpu_time_total
        total += t
        fam = next((f for f, keys in FAMILIES.items() if any(k in ev.key for k in keys)),
                   "other")
        by[fam] += t
    return {k: v / total for k, v in by.items()} if total else by


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--shares", default="1,0.5,0.25,0.1,0.05,0.02")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    graph = wtc.compile_spec(wtc.load_spec(SPEC))
    shares = [float(s) for s in args.shares.split(",")]
    steps = {s: make_step(graph, s, args.batch) for s in shares}
    times: dict[float, list[float]] = {s: [] for s in shares}
    for r in range(args.rounds):  # interleaved, rotating order
        for s in shares[r % len(shares):] + shares[:r % len(shares)]:
            times[s].append(steps[s][0](args.steps) / args.steps)
    rate = {s: steps[s][1] / statistics.median(times[s]) for s in shares}
    ref = rate[shares[0]]
    print(f"ResNet-20 FMNIST, batch {args.batch}, {args.threads} thread(s), "
          f"{args.rounds} interleaved rounds of {args.steps} steps; runtime "
          f"{steps[shares[0]][2]}")
    print(f"{'share':>6}{'ms/step':>9}{'MACs/s':>10}{f'vs {shares[0]:g}x':>9}"
          f"{'conv':>7}{'BN':>6}{'other':>7}")
    for s in shares:
        parts = split(steps[s][0], args.steps)
        print(f"{s:>5g}x{1e3 * statistics.median(times[s]):>9.1f}{rate[s]:>10.2e}"
              f"{rate[s] / ref:>9.2f}{parts['convolution']:>7.0%}{parts['batch norm']:>6.0%}"
              f"{parts['other']:>7.0%}")


if __name__ == "__main__":
    main()
