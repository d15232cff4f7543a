"""The `--cost` option every budgeted command shares: read the cost model once, say what the
CLI should say about it (a latency table from another machine), hand the model down."""

from __future__ import annotations

from typing import Any

from wtc.cli.common import err

COST_HELP = ("what the target is counted in: macs (default) | params | latency:TABLE (a table "
             "made by `wtc profile`; latency:TABLE@RUNTIME also checks its runtime)")


def read_cost(value: str | None) -> Any:
    """The cost model named by `--cost`, or None for MACs (the unchanged default path);
    warnings (another machine) go to stderr."""
    from wtc.graph.costmodel import is_default, parse_cost

    model = parse_cost(value)
    if is_default(model):
        return None
    for line in model.warnings():
        err.print(f"[yellow]warning:[/yellow] {line}", soft_wrap=True)
    return model


def refuse_time_as_macs(labels: list[str]) -> None:
    """A MACs target written as a time ("3ms") is told to name a latency table."""
    from wtc.errors import TargetError
    from wtc.graph.costmodel import time_unit

    for label in labels:
        if time_unit(label) is not None:
            raise TargetError(f"'{label}' is a latency; a latency target needs --cost "
                              "latency:TABLE (a table made by `wtc profile`)")


def budget_line(record: dict[str, Any], model: Any) -> str:
    """'latency 1.234 ms against a budget of 1.240 ms (-0.48%)' for a non-MACs budget."""
    achieved, target = record["achieved"], record["target"]
    gap = (achieved - target) / target
    return (f"{record['name']} {model.format(achieved)} against a budget of "
            f"{model.format(target)} ({gap:+.2%})")
