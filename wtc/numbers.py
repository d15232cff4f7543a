"""One check for every number from outside (a command-line option, a `--set` value, a plan):
finite, of the right type, within bounds. The same bounds hold for a value in a file, so
`--lr inf` is refused like `lr: .inf` in a config file, and the message names where the value
came from (`what`: "--lr", "plan seeds[2]", ...). No torch here.
"""

from __future__ import annotations

import math
from typing import Any

from wtc.errors import UserInputError


class NumberError(UserInputError):
    """A number that is not finite, not of the right type, or out of bounds. CLI exit 2."""


def bounded(value: Any, what: str, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, integer: bool = False) -> Any:
    """`value` (an int or float, or text that reads as one) after checking that it is finite,
    an integer when `integer`, at least `lo` (above it when `lo_open`) and at most `hi`."""
    if isinstance(value, str):
        value = read_number(value, what)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NumberError(f"{what}: expected a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise NumberError(f"{what}: must be a finite number, got {value}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise NumberError(f"{what}: must be a whole number, got {value}")
        value = int(value)
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise NumberError(f"{what}: must be {'above' if lo_open else 'at least'} {_fmt(lo)}, "
                          f"got {_show(value)}")
    if hi is not None and value > hi:
        raise NumberError(f"{what}: must be at most {_fmt(hi)}, got {_show(value)}")
    return value


def read_number(text: str, what: str) -> int | float:
    """An int or float written as text; NumberError for what is not one, or is not finite
    (`inf`, `nan`, `1e400`), or has more digits than Python reads (4,300)."""
    t = text.strip().replace("_", "")
    try:
        return int(t)
    except ValueError as e:
        if "digits" in str(e):  # int max str digits: the number is absurdly long anyway
            raise NumberError(f"{what}: a number of {len(t):,} digits is too long") from None
    try:
        v = float(t)
    except ValueError:
        raise NumberError(f"{what}: expected a number, got {_show(text)}") from None
    if not math.isfinite(v):
        raise NumberError(f"{what}: must be a finite number, got {_show(text)}")
    return v


_UNITS = {"s": 1, "m": 60, "h": 3600}
MAX_DURATION = 30 * 86400  # a month: anything longer is a typo


def read_duration(text: str, what: str) -> float:
    """Seconds from `90`, `90s`, `80m` or `2.5h`; NumberError for anything else, for zero or
    less, and for more than a month."""
    t = text.strip().lower()
    scale = _UNITS.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in _UNITS else t
    try:
        value = read_number(number, what) if number else None
    except NumberError:
        value = None
    if value is None:
        raise NumberError(f"{what}: expected a duration such as 90s, 80m or 2h, got "
                          f"{_show(text)}")
    return float(bounded(value * scale, f"{what} (seconds)", lo=0, lo_open=True,
                         hi=MAX_DURATION))


def _fmt(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python prints
        return "a number too long to print"
    return text if len(text) <= 40 else f"{text[:20]}...({len(text):,} characters)"
