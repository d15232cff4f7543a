"""Reading a search's target(s): a MACs target as an int (None: the spec's own MACs; "0.5x" a
multiple of them; "41M", 4.1e7 absolute: `wtc.widths.MacsTarget`, the one parser), or, under
another cost model, a target in its unit (`wtc.graph.costmodel.parse_target`: "3ms", "250us",
"0.5x"). No torch here.
"""

from __future__ import annotations

from typing import Any

from wtc.graph import StageGraph, count_macs
from wtc.graph.costmodel import is_default, parse_target
from wtc.widths import parse_targets, resolve_macs
from wtc.widths.target import split_targets

__all__ = ["resolve_target", "resolve_targets"]


def resolve_target(graph: StageGraph, target: Any, cost: Any = None) -> int:
    """MACs target as an int: None is the spec's own MACs, "0.5x" a multiple of them, a number
    (or "41M", "4.1e7") is absolute. With a `cost` model other than MACs, a target in its unit
    (`wtc.graph.costmodel.parse_target`: "3ms", "250us", "0.5x")."""
    if not is_default(cost):
        return parse_target(graph, target, cost)  # type: ignore[return-value]
    return resolve_macs(graph, target)


def resolve_targets(graph: StageGraph, target: Any, cost: Any = None) -> list[int]:
    """One or several targets: a list, or a comma-separated string ("0.25x,0.5x"); each read
    by `resolve_target`. Order kept, duplicates dropped."""
    if is_default(cost):
        if target is None:
            return [count_macs(graph)]
        base = count_macs(graph)
        return list(dict.fromkeys(t.macs(base) for t in parse_targets(target)))
    return list(dict.fromkeys(resolve_target(graph, t, cost) for t in split_targets(target)))
