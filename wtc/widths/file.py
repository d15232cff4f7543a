"""Widths: the width annotation of a spec (group id → channels, plus provenance) and its file
format (`widths.json`, "wtc.widths/1"), validated against a graph and written atomically
(`wtc.atomic`). No torch here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wtc.atomic import atomic_write_text
from wtc.errors import WidthsError
from wtc.graph import StageGraph, count_macs
from wtc.limits import MAX_CHANNELS, LimitError, read_limited_text

FORMAT = "wtc.widths/1"


@dataclass(frozen=True)
class Widths:
    """Channels per free width group of one spec, and where they came from."""

    groups: dict[str, int]
    spec_name: str
    spec_hash: str
    macs: int | None = None  # achieved MACs (per image, forward)
    target_macs: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    # `macs.achieved` as a loaded file states it (never written, not part of equality)
    recorded_macs: Any = field(default=None, compare=False)

    @property
    def stale_macs(self) -> str | None:
        """What is wrong with the file's recorded `macs.achieved`, if it disagrees with the
        MACs these widths have on the spec (a hand-edited or copied file), else None."""
        if self.recorded_macs is None or self.recorded_macs == self.macs:
            return None
        return (f"the file records macs.achieved = {self.recorded_macs!r}, but these widths "
                f"have {self.macs:,} MACs on spec '{self.spec_name}' (edited by hand?); the "
                "recorded number is ignored")

    def with_provenance(self, **items: Any) -> Widths:
        return replace(self, provenance={**self.provenance, **items})

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "spec": {"name": self.spec_name, "hash": self.spec_hash},
                "groups": dict(self.groups),
                "macs": {"target": self.target_macs, "achieved": self.macs},
                "provenance": self.provenance}


def new_widths(graph: StageGraph, groups: dict[str, int], target: int | None = None,
               **provenance: Any) -> Widths:
    """Widths for `graph` with their achieved MACs (groups not checked: see check_widths)."""
    return Widths(groups=groups, spec_name=graph.spec.name, spec_hash=graph.spec_hash,
                  macs=count_macs(graph, groups), target_macs=target, provenance=provenance)



def check_widths(graph: StageGraph, groups: Mapping[str, Any], source: str = "widths") -> dict[
        str, int]:
    """Validate a group → channels mapping against a graph; the error names differing groups."""
    free = graph.free_groups
    missing = [g for g in free if g not in groups]
    extra = [g for g in groups if g not in graph.groups]
    fixed = [g for g in groups if g in graph.groups and graph.groups[g].fixed]
    problems = []
    if missing:
        problems.append(f"missing group(s) {_names(missing)}")
    if extra:
        problems.append(f"unknown group(s) {_names(extra)}")
    if fixed:
        problems.append(f"fixed group(s) {_names(fixed)} cannot be set")
    for g in free:
        v = groups.get(g)
        if g not in groups:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            problems.append(f"group '{g}' has {_short(v)} channels; widths are positive "
                            "integers")
        elif v > MAX_CHANNELS:
            problems.append(f"group '{g}' has {v:,} channels; at most {MAX_CHANNELS:,}")
        elif v % graph.groups[g].multiple:
            problems.append(f"group '{g}' has {v} channels; it must be a multiple of "
                            f"{graph.groups[g].multiple} (grouped convolution or channel "
                            "shuffle)")
    if problems:
        raise WidthsError(f"{source} does not fit spec '{graph.spec.name}': "
                          + "; ".join(problems))
    return {g: int(groups[g]) for g in free}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _names(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(f"'{g}'" for g in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def widths_from_groups(graph: StageGraph, groups: Mapping[str, int], *,
                       target_macs: int | None = None, **provenance: Any) -> Widths:
    """Validated Widths for this graph from a group → channels mapping."""
    return new_widths(graph, check_widths(graph, groups), target_macs, **provenance)


# what the public calls that build a network accept as its widths (None: the base widths)
WidthsLike = Widths | Mapping[str, int] | str | Path | None


def as_widths(graph: StageGraph, widths: Widths | Mapping[str, int] | str | Path) -> Widths:
    """The one normalizer of a widths argument, checked against `graph`: a widths file (read),
    a `Widths` of this spec, or a group → channels mapping."""
    if isinstance(widths, str | Path):
        return load_widths(widths, graph)
    if isinstance(widths, Widths):
        if widths.spec_hash != graph.spec_hash:
            raise WidthsError(f"widths for spec '{widths.spec_name}' ({widths.spec_hash}) do not "
                              f"fit '{graph.spec.name}' ({graph.spec_hash}); carry them over "
                              "with `wtc transfer`")
        check_widths(graph, widths.groups)
        return widths
    if isinstance(widths, Mapping):
        return widths_from_groups(graph, widths)
    raise WidthsError(f"widths must be a Widths, a group -> channels mapping or a widths file, "
                      f"not {type(widths).__name__}")


def save_widths(widths: Widths, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file, a failure leaves no file."""
    atomic_write_text(path, json.dumps(widths.to_json(), indent=2) + "\n")


def read_widths_json(path: str | Path, max_bytes: int | None = None) -> Any:
    """The parsed JSON of a widths file, or a WidthsError that says why it cannot be read:
    missing, not a regular file, over the size limit (`wtc.limits`, 1 MB by default), not
    UTF-8, not JSON, nested too deeply, a number too long, or a key twice in one object."""
    p = Path(path)
    try:
        text = read_limited_text(p, "widths file", max_bytes)
    except FileNotFoundError:
        raise WidthsError(f"{p}: no such widths file") from None
    except LimitError as e:
        raise WidthsError(f"{p}: {e}") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise WidthsError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None
    except _DuplicateKey as e:
        line = _line_of_second_key(text, e.key)
        raise WidthsError(f"{p}:{line}: duplicate key '{e.key}' in one object; a key may "
                          "appear once") from None
    except RecursionError:
        raise WidthsError(f"{p}: nested too deeply to be a widths file") from None
    except ValueError as e:  # integers beyond Python's digit limit (4,300 digits)
        digits = re.search(r"has (\d+) digits", str(e))
        size = f" of {int(digits.group(1)):,} digits" if digits else ""
        raise WidthsError(f"{p}: a number{size} is far too long to be a channel count (at "
                          f"most {MAX_CHANNELS:,})") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key if len(key) <= 60 else key[:59] + "…")
        out[key] = value
    return out


def _line_of_second_key(text: str, key: str) -> int:
    """The line of the second `"key":` in the text (where a duplicate key error points)."""
    found = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]
    at = found[1] if len(found) > 1 else (found[0] if found else 0)
    return text.count("\n", 0, at) + 1


def load_widths(path: str | Path, graph: StageGraph) -> Widths:
    """Read a widths file and prove it fits `graph` (same spec hash, same groups)."""
    return widths_from_json(read_widths_json(path), graph, str(path))


def widths_from_json(data: Any, graph: StageGraph, source: str = "widths") -> Widths:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise WidthsError(f"{source}: not a wtc widths file (expected \"format\": \"{FORMAT}\", "
                          f"found {found!r})")
    spec = data.get("spec")
    groups = data.get("groups")
    if not isinstance(spec, dict) or not isinstance(groups, dict):
        raise WidthsError(f"{source}: needs a 'spec' object (name, hash) and a 'groups' object")
    checked = check_widths(graph, groups, source)
    if spec.get("hash") != graph.spec_hash:
        raise WidthsError(f"{source} was made for spec '{spec.get('name')}' (hash "
                          f"{spec.get('hash')}), not '{graph.spec.name}' (hash {graph.spec_hash})"
                          ": the groups agree but the architecture differs (input, kernels, "
                          "strides or base widths); carry it over with `wtc transfer`")
    macs = data.get("macs") if isinstance(data.get("macs"), dict) else {}
    prov = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    return Widths(groups=checked, spec_name=graph.spec.name, spec_hash=graph.spec_hash,
                  macs=count_macs(graph, checked), target_macs=macs.get("target"),
                  provenance=prov, recorded_macs=macs.get("achieved"))


