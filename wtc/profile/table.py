"""`wtc profile`: measure a spec's latency table ("wtc.latency/1", read by `wtc.graph.latency`).

1. Every timed node's layer configuration (`layer_key`: op, kernel, stride, groups, input size,
   ...; channels aside) is listed once, with the channel axes of each node that has it.
2. Each axis gets a grid on the groups' steps: its channel counts with every group at `points`
   evenly spaced multiples of its base, from its step up to `max_multiplier` x (rounded to the
   step), plus the base widths themselves (so the spec's own network is priced exactly on the
   grid, and every point is a width the layer can be built at).
3. Each grid point is timed (`measure.time_layer`: warm-up, repeated medians, the spread);
   medians are made monotone along each axis (more channels never cost less: a measured dip
   is noise), the raw medians are kept beside them.
4. The whole network is timed at a few uniform widths and `overhead + scale · layer sum` fitted
   to it (`graph.latency.fit_network`: dispatch between layers, what runs outside the timed
   modules, layers running warmer alone than inside the network).

The table records the machine, runtime, threads, batch and versions.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wtc.graph import StageGraph
from wtc.graph.latency import (
    FORMAT,
    STATISTICS,
    LatencyCost,
    describe_key,
    fit_network,
    layer_axes,
    layer_key,
    machine_info,
    table_from_json,
    timed_nodes,
)
from wtc.profile.measure import time_layer, time_network
from wtc.profile.runtimes import get_runtime
from wtc.spec.rounding import make_divisible
from wtc.widths import steps as group_steps

OVERHEAD_MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5)
FIT_ROUNDS = 3


@dataclass
class LayerPlan:
    """One layer configuration to time: a node that has it, every node that has it, the grid."""

    key: str
    node: str
    nodes: list[str] = field(default_factory=list)
    grid: list[list[int]] = field(default_factory=list)

    @property
    def points(self) -> int:
        return math.prod(len(ax) for ax in self.grid)


def plan_layers(graph: StageGraph, points: int = 5, max_multiplier: float = 2.0,
                runtime: str | None = None) -> list[LayerPlan]:
    """The distinct layer configurations of `graph` with their channel grids: per axis, the
    channel counts it has when every group is at k/(points-1) x `max_multiplier` of its base
    (k = 0: every group at its step), rounded to the group's step, and at the base widths.
    Each point is the sum of real group widths, so the layer can be built there (a channel
    shuffle's or a grouped conv's divisibility holds) and the spec's own widths are on it."""
    step = group_steps(graph)
    levels = [{g: make_divisible(max_multiplier * k / (points - 1) * graph.groups[g].base,
                                 step[g]) if k else step[g] for g in step}
              for k in range(points)]
    levels.append({g: graph.groups[g].base for g in step})
    plans: dict[str, LayerPlan] = {}
    sets: dict[str, list[set[int]]] = {}
    for n in timed_nodes(graph, runtime):  # less what `runtime` fuses into convolutions
        key = layer_key(graph, n)
        axes = layer_axes(graph, n)
        if key not in plans:
            plans[key], sets[key] = LayerPlan(key, n), [set() for _ in axes]
        plans[key].nodes.append(n)
        for i, ax in enumerate(axes):
            sets[key][i].update(sum(lv.get(g, graph.groups[g].base) for g in ax)
                                for lv in levels)
    for key, p in plans.items():
        p.grid = [sorted(ax) for ax in sets[key]]
    return list(plans.values())


def _monotone(values: Any, depth: int) -> Any:
    """Running maximum along every axis (non-decreasing in each channel count)."""
    if depth == 1:
        out, run = [], 0.0
        for v in values:
            run = max(run, v)
            out.append(run)
        return out
    rows = [_monotone(r, depth - 1) for r in values]
    cols = list(zip(*rows, strict=True))
    fixed = [_monotone(list(c), 1) for c in cols]
    return [list(r) for r in zip(*fixed, strict=True)]


def _grid_values(p: LayerPlan, measure: Callable[[tuple[int, ...]], Any]
                 ) -> tuple[Any, Any, Any]:
    """(medians, bests, spreads) over the grid, nested one list per axis."""
    if len(p.grid) == 1:
        ts = [measure((c,)) for c in p.grid[0]]
        return [t.median for t in ts], [t.best for t in ts], [round(t.spread, 4) for t in ts]
    med, best, spr = [], [], []
    for a in p.grid[0]:
        ts = [measure((a, b)) for b in p.grid[1]]
        med.append([t.median for t in ts])
        best.append([t.best for t in ts])
        spr.append([round(t.spread, 4) for t in ts])
    return med, best, spr


def profile_spec(graph: StageGraph, *, runtime: str = "torch-cpu", threads: int = 1,
                 batch: int = 1, points: int = 5, max_multiplier: float = 2.0,
                 repeats: int = 7, min_sample: float = 1e-3, network_repeats: int = 31,
                 network_sample: float = 1e-3, statistic: str = "median",
                 progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Measure the latency table of `graph` (see the module docstring); returns its JSON.
    `repeats` samples of at least `min_sample` s per grid point; the overhead fit times whole
    networks with `network_repeats` samples of `network_sample` s.
    `statistic` ("median" or "min") is what the table prices with; both are recorded.
    `progress(done, total, what)` is called after each layer configuration."""
    rt = get_runtime(runtime)
    t0 = time.perf_counter()
    plans = plan_layers(graph, points, max_multiplier, runtime)
    total = len(plans) + FIT_ROUNDS
    layers = []
    for i, p in enumerate(plans):
        med, best, spr = _grid_values(p, lambda pt, p=p: time_layer(
            graph, p.node, pt, runtime=runtime, threads=threads, batch=batch,
            repeats=repeats, min_sample=min_sample))
        layers.append({"key": p.key, "layer": describe_key(p.key), "nodes": p.nodes,
                       "axes": ["in", "out"] if len(p.grid) == 2 else ["channels"],
                       "grid": p.grid, "median": _monotone(med, len(p.grid)),
                       "min": _monotone(best, len(p.grid)), "raw_median": med,
                       "spread": spr})
        if progress is not None:
            progress(i + 1, total, describe_key(p.key))
    table = {"format": FORMAT, "spec": {"name": graph.spec.name, "hash": graph.spec_hash},
             "runtime": runtime, "threads": threads, "batch": batch, "unit": "s",
             "machine": machine_info(), "versions": rt.versions(),
             "settings": {"points": points, "max_multiplier": max_multiplier,
                          "repeats": repeats, "min_sample_s": min_sample},
             "statistic": statistic, "overhead_s": 0.0, "scale": 1.0, "layers": layers}
    table["fits"], table["overhead_fit"] = _fit_overhead(
        graph, table, runtime, threads, batch, (network_repeats, network_sample),
        lambda k, what: progress(len(plans) + k, total, what) if progress else None)
    table.update(table["fits"][statistic])
    table["seconds"] = round(time.perf_counter() - t0, 2)
    return table


def _fit_overhead(graph: StageGraph, table: dict[str, Any], runtime: str, threads: int,
                  batch: int, sampling: tuple[int, float], progress: Callable[[int, str], Any]
                  ) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """The per-network overhead and scale (`fit_network`) over uniform widths at
    OVERHEAD_MULTIPLIERS of the base, for each statistic (the medians against the medians,
    the bests against the bests); returns them and the points they were fitted on. The
    networks are timed round-robin (`FIT_ROUNDS` rounds, the median per network), so a burst
    of load from another process lands on all of them rather than bending the fit."""
    from wtc.widths import uniform_widths

    nets = [(m, uniform_widths(graph, multiplier=m).groups) for m in OVERHEAD_MULTIPLIERS]
    per_round = max(3, sampling[0] // FIT_ROUNDS)
    samples: list[list[Any]] = [[] for _ in nets]
    for r in range(FIT_ROUNDS):
        for k, (_, groups) in enumerate(nets):
            samples[k].append(time_network(graph, groups, runtime=runtime, threads=threads,
                                           batch=batch, repeats=per_round,
                                           min_sample=sampling[1]))
        progress(r + 1, f"whole networks, round {r + 1}/{FIT_ROUNDS}")
    sums = {s: LatencyCost(table_from_json(table, "the table being made", statistic=s))
            for s in STATISTICS}
    rows = [{"multiplier": m, "measured_s": statistics.median(t.median for t in samples[k]),
             "layer_sum_s": sums["median"].cost(graph, groups),
             "measured_min_s": min(t.best for t in samples[k]),
             "layer_sum_min_s": sums["min"].cost(graph, groups),
             "spread": round(statistics.median(t.spread for t in samples[k]), 4)}
            for k, (m, groups) in enumerate(nets)]
    fits = {}
    for s, suffix in (("median", ""), ("min", "_min")):
        overhead, scale = fit_network([r[f"layer_sum{suffix}_s"] for r in rows],
                                      [r[f"measured{suffix}_s"] for r in rows])
        fits[s] = {"overhead_s": overhead, "scale": scale}
    return fits, rows
