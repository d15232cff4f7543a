"""Atomic file writing, the one way wtc writes a file (widths, checkpoints, metrics, reports,
ledger artifacts, figures, ONNX): through a temporary file in the target folder, renamed into
place only when complete, so a reader never sees half a file and a failure leaves none.

A file that cannot be written is an `OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wtc.errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to `path` for a writer that wants a file name (an exporter): it
    is renamed over `path` when the block ends, and removed when the block raises."""
    p = Path(path)
    if not p.parent.is_dir():
        what = "does not exist" if not p.parent.exists() else "is not a folder"
        raise OutputError(f"cannot write {p}: folder {p.parent} {what}", path=p)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e.strerror or e}", path=p) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        chmod_like_new_file(tmp)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[Any], Any]) -> None:
    """`write(f)` into a binary file object whose bytes land at `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def chmod_like_new_file(path: Path) -> None:
    """mkstemp makes 0600 files; give the result the permissions open() would have."""
    mask = os.umask(0)
    os.umask(mask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~mask)
