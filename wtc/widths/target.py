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
from typing import Any

from wtc.errors import TargetError
from wtc.graph import StageGraph, count_macs
from wtc.limits import MAX_MACS
from wtc.numbers import NumberError, bounded, read_number

_UNITS = {"k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class MacsTarget:
    """One MACs target: `value` times the base MACs when `relative`, else `value` MACs."""

    value: float
    relative: bool
    text: str  # as written (labels such as widths.0.5x.json)
    what: str = "MACs target"  # where it came from, for messages ("--target-macs")

    @classmethod
    def parse(cls, target: MacsTarget | int | float | str, what: str = "MACs target"
              ) -> MacsTarget:
        """Read one target; a TargetError names `what` and says what is wrong: not a number,
        not finite (`inf`, `nanx`, `1e400`), not above 0, or above 10^18 MACs."""
        if isinstance(target, MacsTarget):
            return target
        if isinstance(target, bool) or not isinstance(target, int | float | str):
            raise TargetError(f"{what} must be a number or a multiple such as 0.5x, not "
                              f"{target!r}")
        label = f"{what} '{target}'"
        relative, scale, number = False, 1.0, target
        if isinstance(target, str):
            v = target.strip().lower()
            unit = v[-1:] if v[-1:] in ("x", *_UNITS) else ""
            relative, scale = unit == "x", _UNITS.get(unit, 1.0)
            try:
                number = read_number(v[:-1] if unit else v, label)
            except NumberError as e:
                if "expected a number" in str(e):
                    where = "" if what == "MACs target" else f"{what}: "
                    raise TargetError(f"{where}cannot read MACs target '{target}': give a "
                                      "multiple of the base such as 0.5x, or a number such as "
                                      "4.1e7 or 41M") from None
                raise TargetError(str(e)) from None
        value = _checked(number * scale, label, relative)
        return cls(value, relative, str(target).strip(), what)

    def macs(self, base_macs: int) -> int:
        """The target in MACs, for a spec whose own MACs are `base_macs`."""
        if not self.relative:
            return round(self.value)
        return round(_checked(self.value * base_macs, f"{self.what} '{self.text}'", False))


def _checked(value: float, label: str, relative: bool) -> float:
    """Finite, above 0 and (in MACs) at most `MAX_MACS`, as a TargetError naming `label`."""
    try:
        return bounded(value, label, lo=0, lo_open=True, hi=None if relative else MAX_MACS)
    except NumberError as e:
        raise TargetError(str(e).replace("must be above 0", "must be a positive number "
                                         "(above 0)")) from None


def parse_targets(target: MacsTarget | int | float | str | Sequence[MacsTarget | int | float | str],
                  what: str = "MACs target") -> list[MacsTarget]:
    """One or several targets: a list, or a comma-separated string ("0.25x,0.5x")."""
    return [MacsTarget.parse(t, what) for t in split_targets(target, "MACs target")]


def split_targets(target: Any, what: str = "target") -> list[Any]:
    """The items of a list, or of a comma-separated string ("0.25x,0.5x"), or the one target;
    at least one."""
    if isinstance(target, list | tuple):
        items = list(target)
    elif isinstance(target, str) and "," in target:
        items = [t for t in target.split(",") if t.strip()]
    else:
        items = [target]
    if not items:
        raise TargetError(f"give at least one {what}")
    return items


def resolve_macs(graph: StageGraph, target: MacsTarget | int | float | str | None) -> int:
    """A target in MACs for `graph`; None is the graph's own MACs."""
    base = count_macs(graph)
    return base if target is None else MacsTarget.parse(target).macs(base)
