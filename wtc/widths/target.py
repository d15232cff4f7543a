"""MACs targets as the user writes them, parsed once at the edge (CLI option, plan key,
library argument) and resolved against a graph where its base MACs are known.

    "0.5x", "1.0x"        a multiple of the spec's own MACs
    41000000, "4.1e7"     absolute
    "41M", "2.5k", "1G"   absolute with a unit
    "0.25x,0.5x", [..]    several targets (methods that serve several in one run)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wtc.errors import TargetError
from wtc.graph import StageGraph, count_macs

_UNITS = {"k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class MacsTarget:
    """One MACs target: `value` times the base MACs when `relative`, else `value` MACs."""

    value: float
    relative: bool
    text: str  # as written (labels such as widths.0.5x.json)

    @classmethod
    def parse(cls, target: MacsTarget | int | float | str) -> MacsTarget:
        """Read one target; TargetError says what is wrong with it."""
        if isinstance(target, MacsTarget):
            return target
        if isinstance(target, bool) or not isinstance(target, int | float | str):
            raise TargetError(f"MACs target must be a number or a multiple such as 0.5x, not "
                              f"{target!r}")
        if isinstance(target, int | float):
            value, relative = float(target), False
        else:
            v = target.strip().lower()
            try:
                if v.endswith("x"):
                    value, relative = float(v[:-1]), True
                elif v[-1:] in _UNITS:
                    value, relative = float(v[:-1]) * _UNITS[v[-1]], False
                else:
                    value, relative = float(v), False
            except ValueError:
                raise TargetError(f"cannot read MACs target '{target}': give a multiple of the "
                                  "base such as 0.5x, or a number such as 4.1e7 or 41M") from None
        if not value > 0 or value == float("inf"):
            raise TargetError(f"MACs target must be a positive number, got {target!r}")
        return cls(value, relative, str(target).strip())

    def macs(self, base_macs: int) -> int:
        """The target in MACs, for a spec whose own MACs are `base_macs`."""
        return round(self.value * base_macs if self.relative else self.value)


def parse_targets(target: MacsTarget | int | float | str | Sequence[MacsTarget | int | float | str]
                  ) -> list[MacsTarget]:
    """One or several targets: a list, or a comma-separated string ("0.25x,0.5x")."""
    if isinstance(target, list | tuple):
        items = list(target)
    elif isinstance(target, str) and "," in target:
        items = [t for t in target.split(",") if t.strip()]
    else:
        items = [target]
    if not items:
        raise TargetError("give at least one MACs target")
    return [MacsTarget.parse(t) for t in items]


def resolve_macs(graph: StageGraph, target: MacsTarget | int | float | str | None) -> int:
    """A target in MACs for `graph`; None is the graph's own MACs."""
    base = count_macs(graph)
    return base if target is None else MacsTarget.parse(target).macs(base)
