"""Slicing overhead of the slimmable supernet.

One sandwich step (max, min, 2 random widths: forward + backward each, on the supernet) against
the same four forward/backward passes on standalone networks built at those widths. Rounds are
interleaved, each side takes its best of --repeat runs, and the median ratio over rounds is
printed (target ≤ 1.15).

    .venv/bin/python benchmarks/bench_supernet.py [--spec specs/resnet20_fmnist.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import wtc
from wtc.nn.slimmable import Supernet
from wtc.optimizers.widthgrid import WidthGrid


def _passes(models_and_widths, net, x, y, sliced: bool) -> float:
    t0 = time.perf_counter()
    for w, model in models_and_widths:
        if sliced:
            net.set_widths(w)
            out = net(x)
        else:
            out = model(x)
        F.cross_entropy(out, y).backward()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="specs/resnet20_fmnist.yaml")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="best-of per round and side")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    graph = wtc.compile_spec(wtc.load_spec(a.spec))
    grid = WidthGrid.build(graph, 1.5, 0.15, 10)
    net = Supernet(graph, grid.max).train()
    s = graph.spec.input
    x = torch.randn(a.batch, s.channels, s.resolution, s.resolution)
    y = torch.randint(0, graph.spec.classes, (a.batch,))
    ratios = []
    for r in range(a.rounds + 1):
        widths = grid.sandwich(0, r, 4)
        pairs = [(w, net.extract(w).train()) for w in widths]
        # alternate the two, keep each one's best of `repeat`: load spikes hit both alike
        sliced, plain = float("inf"), float("inf")
        for _ in range(a.repeat):
            sliced = min(sliced, _passes(pairs, net, x, y, sliced=True))
            plain = min(plain, _passes(pairs, net, x, y, sliced=False))
        if r:  # round 0 warms up
            ratios.append(sliced / plain)
            print(f"round {r}: supernet {sliced * 1e3:.1f} ms, standalone {plain * 1e3:.1f} ms, "
                  f"ratio {sliced / plain:.3f}")
    print(f"{graph.spec.name}, batch {a.batch}: sandwich step / 4 standalone passes = "
          f"{statistics.median(ratios):.3f} (median of {a.rounds}; target <= 1.15)")


if __name__ == "__main__":
    main()
