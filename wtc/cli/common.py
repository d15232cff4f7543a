"""What every command shares: consoles, the error-to-exit-code policy, option parsing helpers.

Exit codes (DESIGN.md): 0 success, 2 bad input (spec, widths, options, data), 1 anything else.
Errors are one paragraph on stderr, never a traceback (set WTC_DEBUG=1 to see one).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from wtc.errors import ConfigError, UserInputError, WtcError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error paragraph and return the Exit to raise."""
    err.print(f"[bold red]error:[/bold red] {message}", soft_wrap=True)
    return typer.Exit(code)


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


def print_json(data: Any) -> None:
    """Machine-readable output goes to stdout with no rich markup."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def parse_macs(value: str | None, base_macs: int) -> int | None:
    """'1.0x' / '0.5x' are relative to the spec's base MACs; '4.1e7', '41M' are absolute."""
    from wtc.errors import ConfigError

    if value is None:
        return None
    v = value.strip().lower()
    try:
        if v.endswith("x"):
            return round(float(v[:-1]) * base_macs)
        scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(v[-1:])
        if scale is not None:
            return round(float(v[:-1]) * scale)
        return round(float(v))
    except ValueError:
        raise ConfigError(
            f"cannot read MACs target '{value}': give a multiple of the base such as 0.5x, "
            "or a number such as 4.1e7 or 41M"
        ) from None


PrecisionOpt = Annotated[str | None, typer.Option(
    "--precision", help="auto | fp32 | bf16 | fp16 (auto: bf16 where the CPU or GPU runs it "
    "natively, else fp32)")]
ChannelsLastOpt = Annotated[str | None, typer.Option(
    "--channels-last", help="auto | on | off (NHWC tensors; auto: on for CPU and CUDA)")]


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
