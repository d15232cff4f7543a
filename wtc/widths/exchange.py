"""The most MACs a cost budget buys: width exchanges between groups at a fixed cost.

When the cost is not MACs (a latency table, parameters), groups differ in what one more MAC
costs: on a CPU at batch 1 a depthwise layer (memory-bound) or a convolution on a 3x3 or 1x1
map (weight-bound) costs more time per MAC than a dense one on a mid-sized map. Uniform widths
ignore this; moving channels from groups where a MAC is dear to groups where it is cheap keeps
the cost and adds MACs (capacity). A knapsack in the spirit of HALP's latency-table
allocator, with MACs as the value (no accuracy enters: no training).

From `start` (uniform widths at the budget), each round tries to grow one group by 1, 2, 4
or 8 steps (several steps cross the kinks a piecewise-linear table has on its grid points,
where a one-step trade never pays), then repairs the budget by shrinking, one step at a time,
the other groups that lose the fewest MACs per unit of cost saved; the exchange that gains
the most MACs within the budget is taken. Rounds stop when no exchange gains. Every group
stays within [start / band, start · band] (rounded outward to its step), so the result
stays inside the range the table was measured on and near the shape the target's uniform
widths have. No torch here.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping

from wtc.graph import StageGraph, count_macs
from wtc.graph.costmodel import CostModel
from wtc.widths.scale import steps

GROW_STEPS = (1, 2, 4, 8)

Channels = dict[str, int]


def most_macs_within(graph: StageGraph, cost: CostModel, limit: float,
                     start: Mapping[str, int], *, band: float = 2.0, candidates: int = 24,
                     max_rounds: int = 400) -> Channels:
    """Channels w with cost(graph, w) ≤ `limit` and as many MACs as the exchanges find, each group
    within [start/band, start·band] (see the module docstring). `start` over the limit is
    first shrunk under it. Deterministic: ties go to the group first in the graph."""
    step = steps(graph)
    lo = {g: max(step[g], math.floor(v / band / step[g]) * step[g]) for g, v in start.items()}
    hi = {g: max(lo[g], math.ceil(v * band / step[g]) * step[g]) for g, v in start.items()}

    def price(w: Mapping[str, int]) -> float:
        return cost.cost(graph, w)

    def macs(w: Mapping[str, int]) -> int:
        return count_macs(graph, w)

    w = _repair(dict(start), None, price, macs, limit, lo, step)
    if w is None:  # even the narrowest widths in the band are over: leave the start
        return dict(start)
    for _ in range(max_rounds):
        nxt = _best_exchange(w, price, macs, limit, lo, hi, step, candidates)
        if nxt is None:
            break
        w = nxt
    return w


def _best_exchange(w: Channels, price: Callable[[Mapping[str, int]], float],
                   macs: Callable[[Mapping[str, int]], int], limit: float,
                   lo: Mapping[str, int], hi: Mapping[str, int], step: Mapping[str, int],
                   candidates: int) -> Channels | None:
    """The exchange (one group grown, others shrunk back under the limit) that gains the most
    MACs; None when none gains."""
    m0, c0 = macs(w), price(w)
    grows = []
    for g in w:
        for k in GROW_STEPS:
            v = w[g] + k * step[g]
            if v > hi[g]:
                break
            t = {**w, g: v}
            grows.append((macs(t) - m0, price(t) - c0, g, t))
    # most MACs per unit of cost first (a grow that costs nothing first of all)
    grows.sort(key=lambda r: -r[0] / r[1] if r[1] > 0 else -math.inf)
    best: tuple[int, float, Channels] | None = None
    for dm, _, g, t in grows[:candidates]:
        if dm <= 0:
            continue
        fixed = _repair(t, g, price, macs, limit, lo, step)
        if fixed is None:
            continue
        gain, c = macs(fixed) - m0, price(fixed)
        if gain > 0 and (best is None or (gain, -c) > (best[0], -best[1])):
            best = (gain, c, fixed)
    return best[2] if best else None


def _repair(w: Channels, keep: str | None, price: Callable[[Mapping[str, int]], float],
            macs: Callable[[Mapping[str, int]], int], limit: float, lo: Mapping[str, int],
            step: Mapping[str, int]) -> Channels | None:
    """Shrink groups other than `keep`, one step at a time, the fewest MACs lost per unit of
    cost saved first, until the cost is within `limit`; None when the band runs out first.
    Lazy greedy: rates are re-measured only for the group about to shrink (a rate that got
    worse since goes back in the queue), so a repair costs about one pass over the groups."""
    c = price(w)
    if c <= limit:
        return w
    m = macs(w)

    def trial(g: str) -> tuple[float, Channels, float, int] | None:
        if g == keep or w[g] - step[g] < lo[g]:
            return None
        t = {**w, g: w[g] - step[g]}
        ct = price(t)
        if ct >= c:
            return None
        mt = macs(t)
        return (m - mt) / (c - ct), t, ct, mt

    queue = []
    for i, g in enumerate(w):
        r = trial(g)
        if r is not None:
            heapq.heappush(queue, (r[0], i, g))
    order = {g: i for i, g in enumerate(w)}
    while c > limit:
        if not queue:
            return None
        stale, _, g = heapq.heappop(queue)
        r = trial(g)
        if r is None:
            continue
        if queue and r[0] > queue[0][0] and r[0] > stale:
            heapq.heappush(queue, (r[0], order[g], g))
            continue
        _, w, c, m = r
        nxt = trial(g)
        if nxt is not None:
            heapq.heappush(queue, (nxt[0], order[g], g))
    return w
