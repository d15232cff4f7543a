"""Stacking rules: which source block(s) a target block takes its width ratio from when a
stage has a different depth in the source and the target (`last`, `average`, `interpolate`)."""

from __future__ import annotations

import math

STACKING = ("last", "average", "interpolate")


def source_blocks(j: int, n_t: int, n_s: int, rule: str) -> list[tuple[int, float]]:
    """Source block(s) and weights for target block `j` of a stage with `n_t` target and `n_s`
    source blocks, by the stacking rule."""
    if n_s <= 0:
        return []
    if n_t == n_s:
        return [(j, 1.0)]
    if rule == "last":
        return [(min(j, n_s - 1), 1.0)]
    if rule == "average":
        if j < n_s:
            return [(j, 1.0)]
        return [(i, 1.0) for i in range(n_s)]  # the mean of the stage's source blocks
    # interpolate: relative position j/(n_t-1) in the target ↔ (n_s-1)·pos in the source
    pos = j / (n_t - 1) if n_t > 1 else 0.0
    x = (n_s - 1) * pos
    lo = min(math.floor(x + 1e-9), n_s - 1)
    frac = x - lo
    if frac <= 1e-9 or lo + 1 >= n_s:
        return [(lo, 1.0)]
    return [(lo, 1.0 - frac), (lo + 1, frac)]
