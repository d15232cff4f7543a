"""Channel rounding (the MobileNet divisor rule), shared by spec transforms, uniform scaling,
search and transfer. It lives in the spec layer because `Spec.scaled` rounds channels too;
`wtc.widths` re-exports it."""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 1, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor`, never below `min_value` (default: the
    divisor) and never more than 10% below `value` (the MobileNet rule)."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)
