"""Uniform scaling to a MACs target: one multiplier α over a direction, rounded inside the
bisection to each group's step (the divisor, or a multiple of it that the group's grouped
convolutions need). Implemented once; the uniform baseline, MorphNet's expand step and
transfer all use it. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from wtc.errors import TargetError, WidthsError
from wtc.graph import StageGraph, count_macs, count_params
from wtc.graph.costmodel import CostModel, is_default
from wtc.spec.rounding import make_divisible
from wtc.widths.file import Widths, new_widths


def base_widths(graph: StageGraph) -> Widths:
    """The spec's own channels."""
    return new_widths(graph, {g: graph.groups[g].base for g in graph.free_groups}, method="base")


def scale_to_macs(graph: StageGraph, direction: Mapping[str, float], target_macs: float,
                  divisor: int | None = None, cost: CostModel | None = None
                  ) -> tuple[dict[str, int], float]:
    """Channels round(α · direction[g]) for the one α whose MACs come closest to the target.

    Every group is rounded to a multiple of its step (`steps`: the divisor, or a multiple of it
    a grouped convolution needs): a group of a grouped convolution stays a multiple of its group
    width.
    Bisection on α with rounding inside the loop; then each group is rounded down or up around
    α·direction (see `_round_each`), so the result lands within one group's step of the target
    instead of one rounding level's jump; if that still misses by more than 1% (small networks,
    coarse divisor), single groups move one divisor step further (`_nudge`). Returns
    (channels, α). Raises TargetError when even the smallest network is above the target.
    `cost`: the cost model the target is counted in (`wtc.graph.costmodel`; default MACs).
    """
    measure = _measure(graph, cost)
    div = divisor or graph.spec.divisor
    free = graph.free_groups
    step = steps(graph, div)
    try:
        direction = {g: float(direction[g]) for g in free}
    except KeyError as e:
        raise WidthsError(f"no scaling direction for group {e}") from None

    def at(alpha: float) -> dict[str, int]:
        return {g: make_divisible(alpha * direction[g], step[g]) for g in free}

    if target_macs <= 0:
        raise TargetError(f"{_what(cost)} target must be positive, got {target_macs}")
    smallest = dict(step)
    floor = measure(smallest)
    if floor > target_macs:
        at_least = (f"at {div} channels" if len(set(step.values())) <= 1 else
                    f"at its smallest step ({div} channels, or the group width of its grouped "
                    "convolutions)")
        if is_default(cost):
            raise TargetError(f"MACs target {target_macs:,} is below the smallest network of "
                              f"'{graph.spec.name}' ({floor:,} MACs with every group "
                              f"{at_least})")
        assert cost is not None
        raise TargetError(f"{_what(cost)} target {cost.format(target_macs)} is below the "
                          f"smallest network of '{graph.spec.name}' ({cost.format(floor)} with "
                          f"every group {at_least})")
    lo, hi = 0.0, 1.0
    while measure(at(hi)) < target_macs:
        hi *= 2
        if hi > 1e6:
            shown = f"{target_macs:,}" if is_default(cost) else cost.format(target_macs)
            raise TargetError(f"{_what(cost)} target {shown} is out of reach for "
                              f"'{graph.spec.name}'")
    for _ in range(60):
        mid = (lo + hi) / 2
        if measure(at(mid)) <= target_macs:
            lo = mid
        else:
            hi = mid
    best = min((at(lo), at(hi)), key=lambda w: abs(measure(w) - target_macs))
    rounded = _round_each(measure, direction, lo, step, target_macs, best)
    return _nudge(measure, rounded, target_macs, step), lo


def _measure(graph: StageGraph, cost: CostModel | None) -> Callable[[Mapping[str, int]], float]:
    """The function a bisection measures widths with: count_macs unless another model."""
    if is_default(cost):
        return lambda w: count_macs(graph, w)
    assert cost is not None
    cost.check(graph)
    return lambda w: cost.cost(graph, w)


def _what(cost: CostModel | None) -> str:
    return "MACs" if is_default(cost) else {"params": "parameter"}.get(cost.name, cost.name)


def steps(graph: StageGraph, divisor: int | None = None) -> dict[str, int]:
    """The rounding step of every free group: lcm(gcd(divisor, base width), the group's
    multiple). That is the divisor, raised to a multiple of the group width of a grouped
    convolution; and lowered where the spec's own width is off the divisor (EfficientNet's
    4-channel squeeze-excite under divisor 8 steps by 4), so the base widths are always on the
    grid and one multiplier of 1 gives them back."""
    div = divisor or graph.spec.divisor
    return {g: math.lcm(math.gcd(div, graph.groups[g].base), graph.groups[g].multiple)
            for g in graph.free_groups}


def _round_each(measure: Callable[[Mapping[str, int]], float], direction: Mapping[str, float],
                alpha: float, step: Mapping[str, int], target: float, best: dict[str, int]
                ) -> dict[str, int]:
    """Round each group down or up (to the divisor) around α·direction, whichever combination
    lands closest to the target: exhaustively for up to 10 undecided groups, else greedily from
    the biggest group down. Never worse than `best`, plain rounding at one α."""
    down = {g: max(step[g], math.floor(alpha * direction[g] / step[g]) * step[g])
            for g in direction}
    up = {g: max(step[g], math.ceil(alpha * direction[g] / step[g]) * step[g])
          for g in direction}
    open_ = sorted((g for g in direction if up[g] != down[g]), key=lambda g: -direction[g])
    best_gap = abs(measure(best) - target)
    if len(open_) <= 10:
        for mask in range(1 << len(open_)):
            trial = dict(down)
            for i, g in enumerate(open_):
                if mask >> i & 1:
                    trial[g] = up[g]
            gap = abs(measure(trial) - target)
            if gap < best_gap:
                best, best_gap = trial, gap
        return best
    current = dict(down)
    for g in open_:
        trial = {**current, g: up[g]}
        gap = abs(measure(trial) - target)
        if measure(trial) <= target or gap < best_gap:
            current = trial
        if gap < best_gap:
            best, best_gap = dict(trial), gap
    return best


def _nudge(measure: Callable[[Mapping[str, int]], float], chans: dict[str, int], budget: float,
           step: Mapping[str, int], tolerance: float = 0.01) -> dict[str, int]:
    """When one α with each group rounded up or down still misses the budget by more than
    `tolerance` (small networks with a coarse divisor: the groups whose α·ratio·base falls on
    the divisor cannot move), move single groups by one divisor step, the move that brings the
    MACs closest to the budget first, each group at most once, until within tolerance."""
    gap = abs(measure(chans) - budget)
    if gap <= tolerance * budget:
        return chans
    current, moved = dict(chans), set()
    while gap > tolerance * budget:
        best: tuple[int, str, int] | None = None
        for g, v in current.items():
            if g in moved:
                continue
            for move in (-step[g], step[g]):
                if v + move < step[g]:
                    continue
                trial_gap = abs(measure({**current, g: v + move}) - budget)
                if trial_gap < gap and (best is None or trial_gap < best[0]):
                    best = (trial_gap, g, v + move)
        if best is None:
            break
        gap, g, v = best
        current[g] = v
        moved.add(g)
    return current


def uniform_widths(graph: StageGraph, target_macs: float | None = None,
                   multiplier: float | None = None, cost: CostModel | None = None) -> Widths:
    """One multiplier for every group: given, or bisected so MACs (or `cost`) meet
    `target_macs`."""
    if (target_macs is None) == (multiplier is None):
        raise TargetError("give exactly one of target_macs and multiplier")
    base = {g: float(graph.groups[g].base) for g in graph.free_groups}
    if multiplier is not None:
        step = steps(graph)
        groups = {g: make_divisible(multiplier * b, step[g]) for g, b in base.items()}
        return new_widths(graph, groups, None, method="uniform", multiplier=multiplier)
    assert target_macs is not None
    groups, alpha = scale_to_macs(graph, base, target_macs, cost=cost)
    if is_default(cost):
        return new_widths(graph, groups, target_macs, method="uniform", multiplier=alpha)
    assert cost is not None
    return new_widths(graph, groups, None, method="uniform", multiplier=alpha,
                      cost_model=cost_record(graph, cost, groups, target_macs))


def cost_record(graph: StageGraph, cost: CostModel, groups: Mapping[str, int],
                target: float | None) -> dict[str, Any]:
    """What widths.json's provenance says about a non-MACs budget: the model (and its table),
    the target and what was achieved, in the model's unit."""
    return {**cost.describe(), "target": target, "achieved": cost.cost(graph, groups)}



def summary(graph: StageGraph, groups: Mapping[str, int] | None = None) -> dict[str, Any]:
    """MACs and parameters, the numbers `wtc flops --json` prints."""
    macs = count_macs(graph, groups)
    return {"spec": graph.spec.name, "macs": macs, "flops": 2 * macs,
            "params": count_params(graph, groups), "resolution": graph.spec.input.resolution}

