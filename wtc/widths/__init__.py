"""The widths layer: `Widths` and widths.json (file.py), MACs targets as written ("0.5x",
"41M"; target.py), uniform scaling to a MACs target (scale.py), channel rounding (re-exported
from the spec layer). No torch here."""

from wtc.spec.rounding import make_divisible
from wtc.widths.file import (
    FORMAT,
    Widths,
    WidthsLike,
    as_widths,
    check_widths,
    load_widths,
    new_widths,
    read_widths_json,
    save_widths,
    widths_from_groups,
    widths_from_json,
)
from wtc.widths.scale import (
    base_widths,
    cost_record,
    scale_to_macs,
    steps,
    summary,
    uniform_widths,
)
from wtc.widths.target import MacsTarget, parse_targets, resolve_macs

__all__ = [
    "FORMAT", "MacsTarget", "Widths", "WidthsLike", "as_widths", "base_widths", "check_widths",
    "cost_record", "load_widths", "make_divisible", "new_widths", "parse_targets",
    "read_widths_json", "resolve_macs", "save_widths", "scale_to_macs", "steps", "summary",
    "uniform_widths", "widths_from_groups", "widths_from_json",
]
