"""Do cheap proxies turn their MACs savings into wall time? Training MACs per second of each
source of the Fashion-MNIST width-transfer plan, against the target's, in one process, before
and after the per-step speed-ups.

A proxy's search costs `MACs reduction` times fewer training MACs than the direct search; its
wall-time reduction is that times (proxy MACs/s ÷ target MACs/s), so the ratio printed,
wall reduction ÷ MACs reduction, is the rate ratio. The issue's target is ≥ 0.5 for every proxy
search. (Fixed costs per search — imports, reading the data — are paid once per worker process
and are left out: profiled, a warm tiny-proxy search unit is 98% training steps.)

It times the two training steps the searches run: MorphNet's plain step (base widths) and the
supernet sandwich step of AutoSlim and DMCP (max, min and two random widths at 1.5x), in
three setups, all interleaved round by round:
- before: fp32 NCHW, SGD's per-parameter loop, batch 128 everywhere (what the committed
  Fashion-MNIST experiment ran);
- auto: the runtime `precision: auto` / `channels_last: auto` picks, fused SGD, batch 128;
- auto + batch_scale k: the same with the proxies' batch k x 128 (the plan's `batch_scale`;
  the target keeps 128).
MACs per step are counted analytically (3 x forward), as the searches count them.

Run: .venv/bin/python benchmarks/bench_proxy_throughput.py [--threads 1] [--rounds 3]
     [--steps 2] [--batch-scale 4] [--sources all,half_width_14px]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from wtc.experiment import load_plan
from wtc.experiment.cost import search_macs
from wtc.graph import count_macs
from wtc.nn import build_model
from wtc.nn.slimmable import Supernet
from wtc.optimizers.sandwich import SandwichHooks
from wtc.optimizers.widthgrid import WidthGrid
from wtc.trainer import FP32, Runtime, resolve_runtime
from wtc.trainer.loop import fused_sgd
from wtc.trainer.precision import has_grouped_conv

PLAN = Path(__file__).resolve().parents[1] / "examples" / "width_transfer_fmnist.yaml"
CPU = torch.device("cpu")
SETUPS = ("before", "auto", "auto+k")


def make_step(graph, kind: str, batch: int, runtime: Runtime | None, fused: bool
              ) -> Callable[[int], tuple[float, int]]:
    """A closure running `steps` training steps → (seconds, training MACs)."""
    torch.manual_seed(0)
    loss_fn = nn.CrossEntropyLoss()
    if kind == "plain":
        model = build_model(graph).train()
        fwd = count_macs(graph)

        def one(x, y):
            loss_fn(model(x), y).backward()
            return 3 * fwd * len(y)
    else:
        grid = WidthGrid.build(graph, 1.5, 0.15, 10)
        model = Supernet(graph, grid.max).train()
        hooks = SandwichHooks(grid, samples=4, distill=True, seed=0)

        def one(x, y):
            before = hooks.macs_seen
            hooks.step(model, x, y, loss_fn, lambda loss: loss.backward())
            hooks.step_index += 1
            return 3 * (hooks.macs_seen - before)
    rt = runtime or resolve_runtime("auto", "auto", CPU, grouped_conv=has_grouped_conv(model))
    if rt.channels_last:
        model.to(memory_format=torch.channels_last)
    res = graph.spec.input.resolution
    x = rt.prepare_input(torch.rand(batch, graph.spec.input.channels, res, res))
    y = torch.randint(0, graph.spec.classes, (batch,))
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9,
                          **(fused_sgd(params, CPU) if fused else {"foreach": False}))

    def run(steps: int) -> tuple[float, int]:
        t, macs = time.perf_counter(), 0
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with rt.autocast(CPU):
                macs += one(x, y)
            opt.step()
        return time.perf_counter() - t, macs

    run(1)  # warm-up (oneDNN primitives)
    return run


def measure(plan, names: list[str], k: int, rounds: int, steps: int
            ) -> dict[tuple[str, str, str], float]:
    """Median training MACs/s of every (source, step kind, setup), interleaved rounds."""
    runs = {}
    for src in plan.sources:
        if src.name not in names and not src.is_target:
            continue
        for kind in ("plain", "sandwich"):
            batch_k = 128 if src.is_target else 128 * k
            runs[src.name, kind, "before"] = make_step(src.graph, kind, 128, FP32, False)
            runs[src.name, kind, "auto"] = make_step(src.graph, kind, 128, None, True)
            runs[src.name, kind, "auto+k"] = (runs[src.name, kind, "auto"] if batch_k == 128
                                              else make_step(src.graph, kind, batch_k, None,
                                                             True))
    rates: dict[tuple[str, str, str], list[float]] = {key: [] for key in runs}
    keys = list(runs)
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            sec, macs = runs[key](steps)
            rates[key].append(macs / sec)
    return {key: statistics.median(v) for key, v in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch-scale", type=int, default=4)
    ap.add_argument("--sources", default="half_width_14px,one_block,all",
                    help="proxies to time (data10 runs the target's network: ratio 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    plan = load_plan(PLAN)
    names, k = args.sources.split(","), args.batch_scale
    rates = measure(plan, names, k, args.rounds, args.steps)
    print(f"{args.threads} thread(s), {args.rounds} interleaved rounds of {args.steps} steps; "
          f"plan {PLAN.name}. wall÷MACs = wall-time reduction ÷ MACs reduction against the "
          f"direct search (= proxy MACs/s ÷ target MACs/s; target ≥ 0.5)")
    print(f"{'source':<17}{'method':<10}{'MACs red.':>10}{'before':>8}{'auto':>8}"
          f"{f'auto+b{128 * k}':>11}  target MACs/s before → auto")
    for method, kind in (("morphnet", "plain"), ("autoslim", "sandwich"), ("dmcp", "sandwich")):
        direct = search_macs(plan, method, plan.target)
        base = {s: rates["target", kind, s] for s in SETUPS}
        for src in plan.sources:
            if src.is_target or src.name not in names:
                continue
            red = direct / search_macs(plan, method, src)
            r = [rates[src.name, kind, s] / base[s] for s in SETUPS]
            ok = "yes" if r[2] >= 0.5 else "NO"
            print(f"{src.name:<17}{method:<10}{red:>9.1f}x{r[0]:>8.2f}{r[1]:>8.2f}{r[2]:>11.2f}"
                  f"  {base['before']:.2e} → {base['auto']:.2e}  {ok}")


if __name__ == "__main__":
    main()
