"""A plan's target and its cost model (`target.cost`: macs, params or latency:TABLE), kept out
of the plan module: reading the target in the cost's unit and checking it fits, reading the
cost (the table's path is relative to the plan), what the target's units record about it, the
proxies' MACs share, and the plan hash that ignores an absent cost.

With no `target.cost` (or `macs`) nothing here changes a plan: its hash, its units' parameters
and hashes, and so every committed ledger and report, are what they always were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wtc.errors import PlanError, UserInputError
from wtc.graph import StageGraph, count_macs


def plan_dump(model: Any) -> dict[str, Any]:
    """The plan model as JSON for its hash; an absent `target.cost` is left out."""
    dump = model.model_dump(mode="json")
    if dump["target"].get("cost") is None:
        dump["target"].pop("cost", None)
    return dump


def target_macs_of(graph: StageGraph, macs: Any, file: str | None, cost: Any = None) -> int:
    """`target.macs` read in the cost model's unit (MACs: an int), checked to fit the spec;
    a PlanError at `target.macs` otherwise."""
    from wtc.optimizers.base import resolve_target

    try:
        target = resolve_target(graph, macs, cost)
        fits(graph, target, cost)
    except UserInputError as e:
        raise PlanError(str(e), key="target.macs", file=file) from None
    return target


def fits(graph: StageGraph, target: int, cost: Any = None) -> None:
    """TargetError when even the smallest network is above the target."""
    from wtc.widths import scale_to_macs

    scale_to_macs(graph, {g: float(graph.groups[g].base) for g in graph.free_groups}, target,
                  cost=cost)


def read_plan_cost(value: str | None, base: Path, graph: StageGraph, file: str | None) -> Any:
    """The target's cost model (a latency table's path relative to the plan), None for MACs;
    a PlanError at `target.cost` when it cannot be read or cannot price the target."""
    from wtc.graph.cost_registry import parse_cost
    from wtc.graph.costmodel import is_default

    if value is None:
        return None
    name, sep, arg = value.partition(":")
    if sep and arg and not Path(arg).is_absolute():
        value = f"{name}:{base / arg}"
    try:
        model = parse_cost(value)
        if not is_default(model):
            model.check(graph)
    except UserInputError as e:
        raise PlanError(str(e), key="target.cost", file=file) from None
    return None if is_default(model) else model


def macs_at(graph: StageGraph, target: float, cost: Any) -> int:
    """MACs of the uniform widths at a target of another cost model (the proxies' share)."""
    from wtc.widths import uniform_widths

    return count_macs(graph, uniform_widths(graph, target_macs=target, cost=cost).groups)


def cost_params(plan: Any) -> dict[str, Any] | None:
    """What the target's search and transfer units record about a non-MACs cost: the model
    (its table path) and the table's runtime, threads, batch and hash. None for MACs."""
    if plan.cost is None:
        return None
    d = plan.cost.describe()
    keep = ("name", "runtime", "threads", "batch", "table_sha256")
    return {"model": plan.cost.label(), **{k: d[k] for k in keep if k in d}}


def priced(plan: Any) -> dict[str, Any]:
    """What the run's header adds about a non-MACs cost: the MACs its target came to (the
    report's "at N MACs") and the cost model with its target. Nothing for a MACs plan."""
    if plan.cost is None:
        return {}
    return {"macs": plan.cost_macs, "cost": {**(cost_params(plan) or {}),
                                             "target": plan.target_macs}}
