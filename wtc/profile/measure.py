"""Timing one forward pass: warm-up, an inner loop long enough for the clock, repeated samples,
their median and spread. What is timed is either one layer configuration (the module the
network builds for that node, at given channel counts) or a whole built network.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from wtc.graph import StageGraph
from wtc.nn import build_model
from wtc.nn.build import OP_MODULES
from wtc.profile.runtimes import get_runtime, torch_threads


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median of `samples`, the best (min), and their spread
    (interquartile range over the median: 0.05 means the middle half lie within 5%)."""

    median: float
    spread: float
    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.samples)


def time_call(run: Callable[[], Any], *, repeats: int = 7, warmup: int = 3,
              min_sample: float = 1e-3) -> Timing:
    """Time `run`: `warmup` calls, then `repeats` samples of k calls each, k chosen so a sample
    lasts about `min_sample` seconds (timer resolution and Python overhead average out)."""
    for _ in range(warmup):
        run()
    t0 = time.perf_counter()
    run()
    one = time.perf_counter() - t0
    inner = max(1, min(10_000, math.ceil(min_sample / max(one, 1e-7))))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            run()
        samples.append((time.perf_counter() - t0) / inner)
    med = statistics.median(samples)
    if len(samples) >= 4:
        q = statistics.quantiles(samples, n=4)
        spread = (q[2] - q[0]) / med if med > 0 else 0.0
    else:
        spread = (max(samples) - min(samples)) / med if med > 0 else 0.0
    return Timing(med, spread, tuple(samples))


class Join(nn.Module):
    """add, mul and concat as a module (the network runs them inline in its blocks)."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, *xs: Tensor) -> Tensor:
        if self.op == "concat":
            return torch.cat(xs, dim=1)
        y = xs[0]
        for x in xs[1:]:
            y = y * x if self.op == "mul" else y + x
        return y


def layer_module(graph: StageGraph, node: str, point: tuple[int, ...], batch: int
                 ) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """The module `nn.build` makes for `node` at channel counts `point` (one per axis of its
    table entry: (in, out) for conv and linear, one otherwise), and a random input for it."""
    a = graph.nx.nodes[node]
    op = a["op"]
    cin, cout = (point[0], point[1]) if len(point) == 2 else (point[0], point[0])
    key = json.loads(_key(graph, node))

    def x(c: int, hw: Any) -> Tensor:
        return torch.randn(batch, c, *hw) if hw else torch.randn(batch, c)

    if op in ("add", "mul"):
        return Join(op), tuple(x(cin, hw) for hw in key["inputs"])
    if op == "concat":
        from wtc.graph.cost import channels

        base = channels(graph)
        parts = [sum(base[g] for g in graph.nx.nodes[i]["groups"]) for i in a["inputs"]]
        sizes = [max(1, round(cout * p / sum(parts))) for p in parts[:-1]]
        sizes.append(max(1, cout - sum(sizes)))
        return Join(op), tuple(x(c, hw) for c, hw in zip(sizes, key["inputs"], strict=True))
    module = OP_MODULES.get(op)(a, cin, cout, False)
    return module, (x(cin, a["in_hw"]),)


def _key(graph: StageGraph, node: str) -> str:
    from wtc.graph.latency import layer_key

    return layer_key(graph, node)


def time_layer(graph: StageGraph, node: str, point: tuple[int, ...], *, runtime: str,
               threads: int, batch: int, repeats: int = 7, min_sample: float = 1e-3) -> Timing:
    """Latency of one layer configuration at one grid point on `runtime`."""
    rt = get_runtime(runtime)
    with torch_threads(threads):
        module, inputs = layer_module(graph, node, point, batch)
        run = rt.prepare(module, inputs, threads)
        return time_call(run, repeats=repeats, min_sample=min_sample)


def time_network(graph: StageGraph, widths: Mapping[str, int] | None = None, *, runtime: str,
                 threads: int, batch: int, repeats: int = 31, min_sample: float = 1e-3
                 ) -> Timing:
    """End-to-end latency of the built network (`nn.build_model`) at `widths` on `runtime`.
    Samples as short as the layers' (one call when a call takes over `min_sample`), many of
    them: on a shared machine a long sample almost always holds a preemption, a short one's
    median does not, so layer sums and whole networks stay comparable."""
    rt = get_runtime(runtime)
    spec = graph.spec
    with torch_threads(threads):
        model = build_model(graph, widths)
        x = torch.randn(batch, spec.input.channels, spec.input.resolution, spec.input.resolution)
        run = rt.prepare(model, (x,), threads)
        return time_call(run, repeats=repeats, warmup=5, min_sample=min_sample)
