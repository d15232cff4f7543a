"""Reading a search's target(s): a MACs target as an int (None: the spec's own MACs; "0.5x" a
multiple of them; "41M", 4.1e7 absolute), or, under another cost model, a target in its unit
(`wtc.graph.costmodel.parse_target`: "3ms", "250us", "0.5x"). No torch here.
"""

from __future__ import annotations

from typing import Any

from wtc.errors import TargetError
from wtc.graph import StageGraph, count_macs
from wtc.graph.costmodel import is_default, parse_target

__all__ = ["resolve_target", "resolve_targets"]


def resolve_target(graph: StageGraph, target: int | float | str | None,
                   cost: Any = None) -> int:
    """MACs target as an int: None is the spec's own MACs, "0.5x" a multiple of them, a number
    (or "41M", "4.1e7") is absolute. With a `cost` model other than MACs, a target in its unit
    (`wtc.graph.costmodel.parse_target`: "3ms", "250us", "0.5x")."""
    if not is_default(cost):
        return parse_target(graph, target, cost)  # type: ignore[return-value]
    base = count_macs(graph)
    if target is None:
        return base
    if isinstance(target, bool):
        raise TargetError(f"MACs target must be a number or a multiple such as 0.5x, not "
                          f"{target!r}")
    if isinstance(target, int | float):
        value = float(target)
    else:
        v = str(target).strip().lower()
        try:
            if v.endswith("x"):
                value = float(v[:-1]) * base
            elif v[-1:] in ("k", "m", "g"):
                value = float(v[:-1]) * {"k": 1e3, "m": 1e6, "g": 1e9}[v[-1]]
            else:
                value = float(v)
        except ValueError:
            raise TargetError(f"cannot read MACs target '{target}': give a multiple of the base "
                              "such as 0.5x, or a number such as 4.1e7 or 41M") from None
    if not value > 0 or value == float("inf"):
        raise TargetError(f"MACs target must be a positive number, got {target!r}")
    return round(value)


def resolve_targets(graph: StageGraph, target: Any, cost: Any = None) -> list[int]:
    """One or several MACs targets: a list, or a comma-separated string ("0.25x,0.5x"); each
    read by `resolve_target`. Order kept, duplicates dropped."""
    if isinstance(target, list | tuple):
        items = list(target)
    elif isinstance(target, str) and "," in target:
        items = [t for t in target.split(",") if t.strip()]
    else:
        items = [target]
    if not items:
        raise TargetError("give at least one MACs target")
    return list(dict.fromkeys(resolve_target(graph, t, cost) for t in items))
