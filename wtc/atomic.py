"""Atomic file writing, the one way wtc writes a file (widths, checkpoints, metrics, reports,
ledger artifacts, figures, ONNX): through a temporary file in the target folder, renamed into
place only when complete, so a reader never sees half a file and a failure leaves none.

A file or folder that cannot be written (no permission, no space left, a read-only disk, a
missing folder) is a `WriteError` naming the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wtc.errors import WriteError


@contextlib.contextmanager
def _replacing(path: str | Path) -> Iterator[tuple[int, Path]]:
    """(descriptor, path) of a temporary file next to `path`, renamed over `path` when the
    block ends and removed when it raises (an OSError in the block, a full disk say, becomes a
    WriteError naming `path`)."""
    p = Path(path)
    if not p.parent.is_dir():
        what = "does not exist" if not p.parent.exists() else "is not a folder"
        raise WriteError(p, f"folder {p.parent} {what}")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise WriteError(p, e) from None
    tmp = Path(name)
    try:
        yield fd, tmp
        chmod_like_new_file(tmp)
        os.replace(tmp, p)
    except OSError as e:  # no space left, a read-only disk, a quota: the path, one line
        tmp.unlink(missing_ok=True)
        raise WriteError(p, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to `path` for a writer that wants a file name (an exporter),
    renamed over `path` when the block ends (see `_replacing`)."""
    with _replacing(path) as (fd, tmp):
        os.close(fd)
        yield tmp


def atomic_write(path: str | Path, write: Callable[[Any], Any]) -> None:
    """`write(f)` into a binary file object whose bytes land at `path` atomically."""
    with _replacing(path) as (fd, _), os.fdopen(fd, "wb") as f:
        write(f)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def make_folders(path: str | Path) -> Path | None:
    """mkdir -p `path`; returns the topmost folder it created (None when `path` existed), so a
    failed run can remove exactly what it made. WriteError naming the folder otherwise."""
    p = Path(path)
    top = None
    for parent in (p, *p.parents):
        if parent.exists():
            break
        top = parent
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(p, e) from None
    return top


def chmod_like_new_file(path: Path) -> None:
    """mkstemp makes 0600 files; give the result the permissions open() would have."""
    mask = os.umask(0)
    os.umask(mask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~mask)
