"""What every command shares: consoles, the error-to-exit-code policy, option parsing helpers.

Exit codes: 0 success, 2 bad input (spec, widths, options, data), 1 anything else.
Errors are one paragraph on stderr, never a traceback (set WTC_DEBUG=1 to see one).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from wtc.errors import ConfigError, UserInputError, WtcError
from wtc.text import shown

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error paragraph and return the Exit to raise."""
    err.print(f"[bold red]error:[/bold red] {shown(message)}", soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    """One warning line on stderr; the text is printed as is (no rich markup read from it)."""
    err.print(f"[yellow]warning:[/yellow] {shown(message)}", soft_wrap=True)


def handle_errors(fn: F) -> F:
    """Map library errors to one message and the exit code policy; never show a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except UserInputError as e:
            _debug()
            raise fail(str(e), 2) from None
        except WtcError as e:
            _debug()
            raise fail(str(e), 1) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as e:  # the last line of defence: a bug, reported in one line
            _debug()
            raise fail(f"internal error ({type(e).__name__}): {e}", 1) from None

    return wrapper  # type: ignore[return-value]


def _debug() -> None:
    if os.environ.get("WTC_DEBUG"):
        import traceback

        traceback.print_exc()


def esc(value: object) -> str:
    """User text (a name, a path) for a rich print: markup and control characters escaped."""
    return shown(str(value))


def print_json(data: Any) -> None:
    """Machine-readable output goes to stdout with no rich markup."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


# command-line numbers: (lowest, lowest excluded, highest, whole number); wtc.limits holds the
# bounds a file value meets too
def option_bounds() -> dict[str, tuple[float | None, bool, float | None, bool]]:
    from wtc import limits as L

    return {
        "epochs": (1, False, L.MAX_EPOCHS, True), "lr": (0, True, None, False),
        "batch_size": (1, False, L.MAX_BATCH, True), "fraction": (0, True, 1, False),
        "val_split": (0, False, 0.999, False), "seed": (0, False, L.MAX_SEED, True),
        "resolution": (4, False, L.MAX_RESOLUTION, True), "workers": (0, False, L.MAX_THREADS,
                                                                       True),
        "threads": (1, False, L.MAX_THREADS, True), "jobs": (1, False, L.MAX_THREADS, True),
        "width": (0, True, L.MAX_CHANNELS, False), "depth": (0, True, L.MAX_DEPTH, False),
        "classes": (2, False, L.MAX_CLASSES, True), "val_min_per_class": (0, False, 100_000,
                                                                           True),
    }


def check_options(**values: Any) -> None:
    """Check command-line numbers at the edge (finite, typed, bounded): the message names the
    option (`--lr`), so a value given here is never blamed on a config file. None is unset."""
    from wtc.numbers import bounded

    bounds = option_bounds()
    for name, value in values.items():
        if value is None:
            continue
        lo, lo_open, hi, integer = bounds[name]
        bounded(value, f"--{name.replace('_', '-')}", lo=lo, lo_open=lo_open, hi=hi,
                integer=integer)


def parse_channels_last(value: str | None) -> bool | str | None:
    """'auto' | 'on' | 'off' (also true/false/1/0) -> "auto" | True | False."""
    if value is None:
        return None
    v = value.strip().lower()
    if v == "auto":
        return "auto"
    if v in ("on", "true", "1", "yes"):
        return True
    if v in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"--channels-last takes auto, on or off, not '{value}'")
