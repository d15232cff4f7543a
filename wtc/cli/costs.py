"""The `--cost` option every budgeted command shares: read the cost model once, say what the
CLI should say about it (a latency table from another machine), hand the model down."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wtc.cli.common import err

if TYPE_CHECKING:
    from wtc.graph import StageGraph
    from wtc.graph.costmodel import CostModel


def read_cost(value: str | None) -> CostModel | None:
    """The cost model named by `--cost`, or None for MACs (the unchanged default path);
    warnings (another machine) go to stderr."""
    from wtc.graph.cost_registry import parse_cost
    from wtc.graph.costmodel import is_default

    model = parse_cost(value)
    if is_default(model):
        return None
    for line in model.warnings():
        err.print(f"[yellow]warning:[/yellow] {line}", soft_wrap=True)
    return model


def read_targets(graph: StageGraph, labels: list[str], cost: str | None
                 ) -> tuple[CostModel | None, list[Any]]:
    """(cost model or None, the targets in its unit) from `--cost` and `--target-macs` labels;
    MACs targets are read by `wtc.widths.MacsTarget`, the one parser."""
    from wtc.graph import count_macs
    from wtc.graph.costmodel import parse_target
    from wtc.widths import MacsTarget

    model = read_cost(cost)
    if model is None:
        refuse_time_as_macs(labels)
        base = count_macs(graph)
        return None, [MacsTarget.parse(t, "--target-macs").macs(base) for t in labels]
    model.check(graph)
    return model, [parse_target(graph, t, model) for t in labels]


def refuse_time_as_macs(labels: list[str]) -> None:
    """A MACs target written as a time ("3ms") is told to name a latency table."""
    from wtc.errors import TargetError
    from wtc.graph.costmodel import time_unit

    for label in labels:
        if time_unit(label) is not None:
            raise TargetError(f"'{label}' is a latency; a latency target needs --cost "
                              "latency:TABLE (a table made by `wtc profile`)")


def with_cost(graph: StageGraph, groups: dict[str, int], model: CostModel, total: dict[str, Any],
              stages: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`wtc show`'s per-stage rows and total with the cost model's number beside MACs (a
    latency table's per-network overhead is its own line)."""
    model.check(graph)
    per_node = model.node_costs(graph, groups)
    by_stage: dict[str, float] = {}
    for n, v in per_node.items():
        stage = graph.nx.nodes[n]["stage"]
        by_stage[stage] = by_stage.get(stage, 0.0) + v
    whole = model.cost(graph, groups)
    rows = [{**row, "cost": by_stage.get(row["stage"], 0.0)} for row in stages]
    record = {**model.describe(), "total": whole, "overhead": whole - sum(by_stage.values())}
    return {**total, "cost": record}, rows


def targets_text(targets: list[Any], model: Any) -> str:
    """'1,000,000 MACs' (as before) or '1.234 ms, 2.000 ms'."""
    if model is None:
        return ", ".join(f"{t:,}" for t in targets) + " MACs"
    return ", ".join(model.format(t) for t in targets)


def budget_line(record: dict[str, Any], model: Any) -> str:
    """'latency 1.234 ms against a budget of 1.240 ms (-0.48%)' for a non-MACs budget."""
    achieved, target = record["achieved"], record["target"]
    gap = (achieved - target) / target
    return (f"{record['name']} {model.format(achieved)} against a budget of "
            f"{model.format(target)} ({gap:+.2%})")
