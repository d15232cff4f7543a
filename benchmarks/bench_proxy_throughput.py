"""Do cheap proxies turn their MACs savings into wall time? Training MACs per second of each
source of the Fashion-MNIST width-transfer plan, against the target's, in one process.

A proxy's search costs `MACs reduction` times fewer training MACs than the direct search; its
wall-time reduction is that times (proxy MACs/s ÷ target MACs/s). Tiny proxies (12-48 channels
at 14/7/4 px) run far fewer MACs per second than the full network, so the issue's target (wall
reduction at least half the MACs reduction) needs a rate ratio of at least 0.5. For each source
this times the two training steps the searches run, in the runtime `auto` picks: MorphNet's
plain step (base widths) and the supernet sandwich step of AutoSlim and DMCP (max, min and two
random widths at 1.5x), at the plan's batch (128) and at the proxy's `batch_scale`. MACs per
step are counted analytically (3 x forward), as the searches count them.

Run: .venv/bin/python benchmarks/bench_proxy_throughput.py [--threads 1] [--rounds 3]
     [--batch-scale 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from wtc.experiment import load_plan
from wtc.experiment.cost import search_macs
from wtc.nn import build_model
from wtc.nn.slimmable import Supernet
from wtc.optimizers.sandwich import SandwichHooks
from wtc.optimizers.widthgrid import WidthGrid
from wtc.trainer import resolve_runtime
from wtc.trainer.precision import has_grouped_conv

PLAN = Path(__file__).resolve().parents[1] / "examples" / "width_transfer_fmnist.yaml"
CPU = torch.device("cpu")


def _step_rate(model: nn.Module, step, batch: int, res: int, rounds: int, steps: int
               ) -> float:
    """Training MACs per second of `step(x, y) -> MACs` (median of interleaved rounds)."""
    rt = resolve_runtime("auto", "auto", CPU, grouped_conv=has_grouped_conv(model))
    if rt.channels_last:
        model.to(memory_format=torch.channels_last)
    x = rt.prepare_input(torch.rand(batch, 1, res, res))
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run() -> tuple[float, int]:
        t, macs = time.perf_counter(), 0
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with rt.autocast(CPU):
                macs += step(x, y)
            opt.step()
        return time.perf_counter() - t, macs

    run()  # warm-up
    rates = []
    for _ in range(rounds):
        sec, macs = run()
        rates.append(macs / sec)
    return statistics.median(rates)


def plain_rate(graph, batch: int, rounds: int, steps: int) -> float:
    from wtc.graph import count_macs

    model = build_model(graph).train()
    loss_fn = nn.CrossEntropyLoss()
    fwd = count_macs(graph)

    def step(x, y):
        loss_fn(model(x), y).backward()
        return 3 * fwd * len(y)
    return _step_rate(model, step, batch, graph.spec.input.resolution, rounds, steps)


def sandwich_rate(graph, batch: int, rounds: int, steps: int) -> float:
    grid = WidthGrid.build(graph, 1.5, 0.15, 10)
    net = Supernet(graph, grid.max).train()
    hooks = SandwichHooks(grid, samples=4, distill=True, seed=0)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        before = hooks.macs_seen
        hooks.step(net, x, y, loss_fn, lambda loss: loss.backward())
        hooks.step_index += 1
        return 3 * (hooks.macs_seen - before)
    return _step_rate(net, step, batch, graph.spec.input.resolution, rounds, steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-scale", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    plan = load_plan(PLAN)
    k = args.batch_scale
    print(f"{args.threads} thread(s); plan {PLAN.name}; rate = training MACs/s, ratio to the "
          f"target's; wall reduction = MACs reduction x rate ratio (needs ≥ 0.5 x MACs)")
    rates = {}
    for src in plan.sources:
        rates[src.name] = {
            "plain": [plain_rate(src.graph, b, args.rounds, args.steps) for b in (128, 128 * k)],
            "sandwich": [sandwich_rate(src.graph, b, args.rounds, args.steps)
                         for b in (128, 128 * k)]}
    print(f"{'source':<17}{'method':<10}{'MACs red.':>10}{'rate b128':>11}{'ratio':>7}"
          f"{'wall red.':>10}{f'rate b{128 * k}':>11}{'ratio':>7}{'wall red.':>10}  ok")
    for method, kind in (("morphnet", "plain"), ("autoslim", "sandwich"), ("dmcp", "sandwich")):
        direct = search_macs(plan, method, plan.target)
        base = rates["target"][kind][0]
        for src in plan.sources:
            red = direct / search_macs(plan, method, src)
            r1, rk = (r / base for r in rates[src.name][kind])
            ok = "yes" if max(r1, rk) >= 0.5 or src.is_target else "NO"
            print(f"{src.name:<17}{method:<10}{red:>9.1f}x{rates[src.name][kind][0]:>11.2e}"
                  f"{r1:>7.2f}{red * r1:>9.1f}x{rates[src.name][kind][1]:>11.2e}{rk:>7.2f}"
                  f"{red * rk:>9.1f}x  {ok}")


if __name__ == "__main__":
    main()
