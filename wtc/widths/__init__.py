"""The widths layer: `Widths` and widths.json (file.py), uniform scaling to a MACs target
(scale.py), channel rounding (re-exported from the spec layer). No torch here."""

from wtc.spec.rounding import make_divisible
from wtc.widths.file import (
    FORMAT,
    Widths,
    atomic_write,
    atomic_write_text,
    check_widths,
    chmod_like_new_file,
    load_widths,
    make_folders,
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

__all__ = [
    "FORMAT", "Widths", "atomic_write", "atomic_write_text", "base_widths", "check_widths",
    "chmod_like_new_file", "cost_record", "load_widths", "make_divisible", "make_folders",
    "new_widths",
    "read_widths_json",
    "save_widths", "scale_to_macs", "steps", "summary", "uniform_widths", "widths_from_groups",
    "widths_from_json",
]
