"""The width-transfer layer: carry widths optimized on a proxy onto a target of the same family.

    result = wtc.transfer(widths, source_graph, target_graph, stacking="last")
    result.widths           # Widths for the target, with the mapping in its provenance

The public call is `wtc.transfer` (this package is deliberately not named `transfer`, so the
attribute `wtc.transfer` is always the function). No torch here.
"""

from wtc.widthtransfer.core import GroupMapping, TransferResult, transfer, transfer_files
from wtc.widthtransfer.discovery import (
    SourceSpec,
    find_source_spec,
    locate_source,
    read_recorded_spec,
)
from wtc.widthtransfer.projection import WidthEffect, absolute_channels, project_spec, width_effect
from wtc.widthtransfer.stacking import STACKING

__all__ = [
    "STACKING", "GroupMapping", "SourceSpec", "TransferResult", "WidthEffect",
    "absolute_channels", "find_source_spec", "locate_source", "project_spec",
    "read_recorded_spec", "transfer", "transfer_files", "width_effect",
]
