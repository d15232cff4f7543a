"""User text that reaches a terminal or a file (spec, plan and proxy names): printable and
bounded, or refused, so no escape sequence is printed raw and no line break lands in a YAML
file that then fails to load. No torch here.
"""

from __future__ import annotations

import re

from wtc.limits import MAX_NAME_CHARS, MAX_TEXT_CHARS

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*")


def text_problem(text: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    """Why `text` cannot be a name or title shown to users, or None."""
    if len(text) > limit:
        return f"{len(text):,} characters, over the limit of {limit:,}"
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        return (f"holds the unprintable character {bad!r} (control characters, escape "
                "sequences and line breaks are refused)")
    return None


def printable(text: str) -> str:
    """A pydantic after-validator: printable text of at most MAX_TEXT_CHARS characters."""
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def plain_name(name: str) -> str:
    """A pydantic after-validator: a name that can also be part of a file or unit name
    (letters, digits and `_.+=-`, not starting with a dot, at most MAX_NAME_CHARS)."""
    if len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name):
        raise ValueError(f"{name[:60]!r} is not a name: letters, digits and _.+=- only, at "
                         f"most {MAX_NAME_CHARS} characters")
    return name


def shown(text: str) -> str:
    """`text` safe to print: rich markup escaped, control characters (an escape sequence, a
    carriage return) written as `\\x1b`-style escapes; line breaks kept."""
    from rich.markup import escape

    return escape("".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text))
