"""Finding the spec a widths file was made for: widths.json records its spec's structural hash,
so the source spec of a transfer can be found by hash instead of being named."""

from __future__ import annotations

import itertools
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from wtc.errors import TransferError, WidthsError, WtcError
from wtc.graph import StageGraph, compile_spec
from wtc.limits import LimitError, read_limited_text
from wtc.spec import load_spec
from wtc.widths import read_widths_json

SPEC_SUFFIXES = (".yaml", ".yml")
MAX_CANDIDATES = 500  # spec files loaded while looking for a widths file's source
SEARCH_SECONDS = 2.0
_MAX_WALK = 5_000  # directory entries looked at under specs/
_STAGES = re.compile(r"^stages\s*:", re.M)
_HEAD = re.compile(r"^head\s*:", re.M)


@dataclass(frozen=True)
class SourceSpec:
    """The spec a widths file was made for: its path, compiled graph, and whether it was found
    by its hash (rather than given)."""

    path: Path
    graph: StageGraph
    found: bool


def read_recorded_spec(path: str | Path) -> tuple[str | None, str | None]:
    """The spec name and hash a widths file says it was made for (checked later, in full)."""
    data = read_widths_json(path)
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        raise WidthsError(f"{path}: not a wtc widths file (no 'spec' object with name and hash)")
    return spec.get("name"), spec.get("hash")


def find_source_spec(widths_path: str | Path, spec_hash: str,
                     root: str | Path | None = None, *, name: str | None = None,
                     max_files: int = MAX_CANDIDATES, seconds: float = SEARCH_SECONDS
                     ) -> Path | None:
    """A spec whose structural hash is `spec_hash`: next to the widths file first, then under
    specs/ of `root` (default: the working folder).

    The folders may hold anything, so the search is bounded and reads defensively: only
    regular `.yaml`/`.yml` files (no FIFOs, devices, broken links or symlink loops), each within
    the file size limit and through the bounded YAML reader of `load_spec`; only files with
    top-level `stages:` and `head:` keys (the ones that could be specs) are loaded, those that
    mention the recorded spec `name` first; at most `max_files` are loaded and the search stops
    after `seconds`. Files that do not load are skipped."""
    deadline = time.monotonic() + seconds
    root = Path.cwd() if root is None else Path(root)
    candidates = _spec_files(Path(widths_path).parent, recursive=False)
    specs = root / "specs"
    if _is_dir(specs):
        candidates += _spec_files(specs, recursive=True)
    plausible: list[tuple[bool, Path]] = []
    seen: set[tuple[int, int]] = set()
    for p in candidates:
        if time.monotonic() > deadline or len(plausible) >= max_files:
            break
        try:
            st = p.stat()
        except OSError:  # broken links, symlink loops, permissions
            continue
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            text = read_limited_text(p, "spec file")
        except (LimitError, OSError):
            continue
        if _STAGES.search(text) and _HEAD.search(text):
            named = bool(name) and re.search(rf"^name:\s*['\"]?{re.escape(name)}['\"]?\s*$",
                                             text, re.M) is not None
            plausible.append((not named, p))
    for _, p in sorted(plausible, key=lambda item: item[0]):  # stable: named ones first
        if time.monotonic() > deadline:
            break
        try:
            if load_spec(p).structural_hash == spec_hash:
                return p
        except (WtcError, OSError):
            continue
    return None


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def _spec_files(folder: Path, recursive: bool) -> list[Path]:
    """`.yaml`/`.yml` entries of a folder (and, if recursive, of its subfolders, without
    following links to folders), sorted, at most _MAX_WALK entries looked at."""
    out: list[Path] = []
    todo, looked = [folder], 0
    while todo and looked < _MAX_WALK:
        current = todo.pop(0)
        try:
            with os.scandir(current) as it:  # a huge folder: only its first entries
                entries = sorted(itertools.islice(it, _MAX_WALK - looked), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            looked += 1
            try:
                if recursive and e.is_dir(follow_symlinks=False):
                    todo.append(Path(e.path))
                elif e.name.endswith(SPEC_SUFFIXES):
                    out.append(Path(e.path))
            except OSError:
                continue
    return out


def locate_source(widths_path: str | Path, source: str | Path | None = None,
                  root: str | Path | None = None) -> SourceSpec:
    """The source spec of a widths file: `source` if given (it must have the recorded hash),
    else found by the recorded hash (`find_source_spec`). TransferError says what to pass."""
    widths_path = Path(widths_path)
    name, recorded = read_recorded_spec(widths_path)
    found = False
    if source is None:
        if not recorded:
            raise TransferError(f"{widths_path} records no spec hash; pass the spec the widths "
                                "were made for with --source SPEC")
        source = find_source_spec(widths_path, recorded, root, name=name)
        if source is None:
            raise TransferError(
                f"{widths_path} was made for spec '{name}' (hash {recorded}) and no spec with "
                f"that hash is next to it or in specs/; pass the spec the widths were made "
                "for with --source SPEC")
        found = True
    graph = compile_spec(load_spec(source))
    if recorded != graph.spec_hash:
        raise TransferError(
            f"{widths_path} was made for spec '{name}' (hash {recorded}), but --source {source} "
            f"is '{graph.spec.name}' (hash {graph.spec_hash}); pass the spec the widths were "
            "made for (the proxy, e.g. written by `wtc proxy`)")
    return SourceSpec(path=Path(source), graph=graph, found=found)
