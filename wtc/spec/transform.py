"""Projections of a spec (network projection): narrower, shallower, smaller images.

Each returns a new Spec; the original is never modified. Used by `wtc proxy` to build the cheap
proxy a width search runs on, and by `wtc flops --resolution`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wtc.errors import SpecError
from wtc.spec.check import check_spec
from wtc.spec.rounding import make_divisible

if TYPE_CHECKING:  # Spec.scaled calls this module: annotations only, no import cycle
    from wtc.spec.schema import Spec


def scaled(spec: Spec, *, width: float | None = None, depth: float | None = None,
           depths: Sequence[int] | None = None, resolution: int | None = None,
           classes: int | None = None, name: str | None = None) -> Spec:
    """A projected copy: widths × `width` (rounded to the divisor), depths × `depth` (ceil, at
    least 1) or exactly `depths`, a new input `resolution`, a new number of `classes`."""
    from pydantic import ValidationError

    data = spec.model_dump()
    if width is not None:
        if not (isinstance(width, int | float) and math.isfinite(width) and width > 0):
            raise SpecError(f"width multiplier must be a positive finite number, got {width}")
        for part in ("stem", "head", "stages"):
            for call in data[part]:
                if call.get("width") is not None:
                    call["width"] = make_divisible(call["width"] * width, spec.divisor)
    if depth is not None and depths is not None:
        raise SpecError("give either a depth multiplier or per-stage depths, not both")
    if depth is not None:
        if not (isinstance(depth, int | float) and math.isfinite(depth) and depth > 0):
            raise SpecError(f"depth multiplier must be a positive finite number, got {depth}")
        if depth * max(s["depth"] for s in data["stages"]) > 10**9:
            raise SpecError(f"depth multiplier {depth} gives over a billion blocks per stage")
        for stage in data["stages"]:
            _set_depth(stage, max(1, math.ceil(stage["depth"] * depth - 1e-9)))
    if depths is not None:
        if len(depths) != len(data["stages"]):
            raise SpecError(f"{len(depths)} depths given for {len(data['stages'])} stages")
        for stage, d in zip(data["stages"], depths, strict=True):
            _set_depth(stage, int(d))
    if resolution is not None:
        data["input"]["resolution"] = int(resolution)
    if classes is not None:
        data["classes"] = int(classes)
    data["name"] = name or spec.name
    try:
        out = type(spec).model_validate(data)
    except ValidationError as e:  # e.g. a width or resolution over the limits
        problems = "; ".join(f"'{'.'.join(map(str, er['loc']))}': {er['msg']}"
                             for er in e.errors()[:3])
        raise SpecError(f"the projection of '{spec.name}' is not a valid spec: {problems}"
                        ) from None
    check_spec(out)
    return out


def _set_depth(stage: dict, depth: int) -> None:
    """A new depth, with every per-block parameter list fitted to it (`fit_blocks`)."""
    stage["depth"] = depth
    stage["params"] = {k: fit_blocks(v, depth) if isinstance(v, list) else v
                       for k, v in stage["params"].items()}


def fit_blocks(values: list, depth: int) -> list:
    """A per-block list for another depth: a shallower stage keeps its first blocks' entries
    (block 0, the one that strides, always among them), a deeper one repeats the last entry
    (the blocks a stage adds are copies of its last block, as in transfer's stacking)."""
    return list(values[:depth]) + [values[-1]] * max(0, depth - len(values))
