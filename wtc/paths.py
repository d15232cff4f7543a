"""Paths read from a file (a ledger's artifacts, a figure named after a method) stay inside the
folder they belong to.

A ledger, a plan or a widths file is input like any other: a path it names is refused when it is
absolute, climbs out with `..`, or resolves (through a symlink) outside its folder. Without this
check `wtc experiment --reuse DIR` would copy files to wherever DIR's ledger says. No torch here.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from wtc.errors import UserInputError

_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}")


class PathError(UserInputError):
    """A path read from a file that leaves the folder it belongs to. CLI exit code 2."""


def contained(folder: str | Path, rel: object, what: str) -> Path:
    """`folder / rel`, after checking that `rel` is a relative path of plain names (no `..`,
    not absolute, no NUL) and that it resolves inside `folder` (a symlink inside pointing out
    is refused too); PathError naming `what` otherwise."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel:
        raise PathError(f"{what}: {rel!r} is not a relative path")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or any(p in ("..", "") for p in rel.split("/")):
        raise PathError(f"{what}: {rel!r} leaves its folder (absolute or '..')")
    base = Path(folder)
    path = base / pure
    try:
        inside = path.resolve().is_relative_to(base.resolve())
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise PathError(f"{what}: {rel!r} cannot be resolved: {e}") from None
    if not inside:
        raise PathError(f"{what}: {rel!r} resolves outside {base} (a symlink)")
    return path


def is_safe_name(name: object) -> bool:
    """A name that can be one file-name part: letters, digits and `_.+=-`, not starting with a
    dot, at most 200 characters (so no separators, no `..`, nothing unprintable)."""
    return isinstance(name, str) and _SAFE_NAME.fullmatch(name) is not None
