"""The block-template registry and the names every template may use.

`BLOCKS` is filled by blocks.py (the built-ins, imported with the package); it lives here, apart
from the templates, so the checks (check.py) can look names up without importing the schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wtc.registry import Registry

if TYPE_CHECKING:
    from wtc.spec.schema import TemplateSpec

IMPLICIT_NAMES = ("width", "stride", "in_channels", "classes", "index", "depth", "block_id",
                  "num_blocks")

BLOCKS: Registry[TemplateSpec] = Registry("block template")
