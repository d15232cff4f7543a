"""Widths: the width annotation of a spec (group id → channels, plus provenance), its file
format (`widths.json`, "wtc.widths/1"), and the one uniform scaling to a MACs target that the
baseline, MorphNet's expand step and transfer all use. No torch here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wtc.errors import TargetError, WidthsError
from wtc.graph import StageGraph, count_macs, count_params
from wtc.rounding import make_divisible

FORMAT = "wtc.widths/1"

__all__ = [
    "FORMAT", "Widths", "base_widths", "check_widths", "load_widths", "make_divisible",
    "save_widths", "scale_to_macs", "uniform_widths",
]


@dataclass(frozen=True)
class Widths:
    """Channels per free width group of one spec, and where they came from."""

    groups: dict[str, int]
    spec_name: str
    spec_hash: str
    macs: int | None = None  # achieved MACs (per image, forward)
    target_macs: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def with_provenance(self, **items: Any) -> Widths:
        return replace(self, provenance={**self.provenance, **items})

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "spec": {"name": self.spec_name, "hash": self.spec_hash},
                "groups": dict(self.groups),
                "macs": {"target": self.target_macs, "achieved": self.macs},
                "provenance": self.provenance}


def _make(graph: StageGraph, groups: dict[str, int], target: int | None = None,
          **provenance: Any) -> Widths:
    return Widths(groups=groups, spec_name=graph.spec.name, spec_hash=graph.spec_hash,
                  macs=count_macs(graph, groups), target_macs=target, provenance=provenance)


def base_widths(graph: StageGraph) -> Widths:
    """The spec's own channels."""
    return _make(graph, {g: graph.groups[g].base for g in graph.free_groups}, method="base")


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
        if g in groups and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            problems.append(f"group '{g}' has {v!r} channels; widths are positive integers")
    if problems:
        raise WidthsError(f"{source} does not fit spec '{graph.spec.name}': "
                          + "; ".join(problems))
    return {g: int(groups[g]) for g in free}


def _names(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(f"'{g}'" for g in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def scale_to_macs(graph: StageGraph, direction: Mapping[str, float], target_macs: int,
                  divisor: int | None = None) -> tuple[dict[str, int], float]:
    """Channels round(α · direction[g]) for the one α whose MACs come closest to the target.

    Bisection on α with rounding inside the loop; then each group is rounded down or up around
    α·direction (see `_round_each`), so the result lands within one group's step of the target
    instead of one rounding level's jump; if that still misses by more than 1% (small networks,
    coarse divisor), single groups move one divisor step further (`_nudge`). Returns
    (channels, α). Raises TargetError when even the smallest network is above the target.
    """
    div = divisor or graph.spec.divisor
    free = graph.free_groups
    try:
        direction = {g: float(direction[g]) for g in free}
    except KeyError as e:
        raise WidthsError(f"no scaling direction for group {e}") from None

    def at(alpha: float) -> dict[str, int]:
        return {g: make_divisible(alpha * direction[g], div) for g in free}

    if target_macs <= 0:
        raise TargetError(f"MACs target must be positive, got {target_macs}")
    smallest = dict.fromkeys(free, div)
    floor = count_macs(graph, smallest)
    if floor > target_macs:
        raise TargetError(f"MACs target {target_macs:,} is below the smallest network of "
                          f"'{graph.spec.name}' ({floor:,} MACs with every group at {div} "
                          "channels)")
    lo, hi = 0.0, 1.0
    while count_macs(graph, at(hi)) < target_macs:
        hi *= 2
        if hi > 1e6:
            raise TargetError(f"MACs target {target_macs:,} is out of reach for "
                              f"'{graph.spec.name}'")
    for _ in range(60):
        mid = (lo + hi) / 2
        if count_macs(graph, at(mid)) <= target_macs:
            lo = mid
        else:
            hi = mid
    best = min((at(lo), at(hi)), key=lambda w: abs(count_macs(graph, w) - target_macs))
    rounded = _round_each(graph, direction, lo, div, target_macs, best)
    return _nudge(graph, rounded, target_macs, div), lo


def _round_each(graph: StageGraph, direction: Mapping[str, float], alpha: float, div: int,
                target: int, best: dict[str, int]) -> dict[str, int]:
    """Round each group down or up (to the divisor) around α·direction, whichever combination
    lands closest to the target: exhaustively for up to 10 undecided groups, else greedily from
    the biggest group down. Never worse than `best`, plain rounding at one α."""
    down = {g: max(div, math.floor(alpha * direction[g] / div) * div) for g in direction}
    up = {g: max(div, math.ceil(alpha * direction[g] / div) * div) for g in direction}
    open_ = sorted((g for g in direction if up[g] != down[g]), key=lambda g: -direction[g])
    best_gap = abs(count_macs(graph, best) - target)
    if len(open_) <= 10:
        for mask in range(1 << len(open_)):
            trial = dict(down)
            for i, g in enumerate(open_):
                if mask >> i & 1:
                    trial[g] = up[g]
            gap = abs(count_macs(graph, trial) - target)
            if gap < best_gap:
                best, best_gap = trial, gap
        return best
    current = dict(down)
    for g in open_:
        trial = {**current, g: up[g]}
        gap = abs(count_macs(graph, trial) - target)
        if count_macs(graph, trial) <= target or gap < best_gap:
            current = trial
        if gap < best_gap:
            best, best_gap = dict(trial), gap
    return best


def _nudge(target: StageGraph, chans: dict[str, int], budget: int, div: int,
           tolerance: float = 0.01) -> dict[str, int]:
    """When one α with each group rounded up or down still misses the budget by more than
    `tolerance` (small networks with a coarse divisor: the groups whose α·ratio·base falls on
    the divisor cannot move), move single groups by one divisor step, the move that brings the
    MACs closest to the budget first, each group at most once, until within tolerance."""
    gap = abs(count_macs(target, chans) - budget)
    if gap <= tolerance * budget:
        return chans
    current, moved = dict(chans), set()
    while gap > tolerance * budget:
        best: tuple[int, str, int] | None = None
        for g, v in current.items():
            if g in moved:
                continue
            for step in (-div, div):
                if v + step < div:
                    continue
                trial_gap = abs(count_macs(target, {**current, g: v + step}) - budget)
                if trial_gap < gap and (best is None or trial_gap < best[0]):
                    best = (trial_gap, g, v + step)
        if best is None:
            break
        gap, g, v = best
        current[g] = v
        moved.add(g)
    return current


def uniform_widths(graph: StageGraph, target_macs: int | None = None,
                   multiplier: float | None = None) -> Widths:
    """One multiplier for every group: given, or bisected so MACs meet `target_macs`."""
    if (target_macs is None) == (multiplier is None):
        raise TargetError("give exactly one of target_macs and multiplier")
    base = {g: float(graph.groups[g].base) for g in graph.free_groups}
    if multiplier is not None:
        groups = {g: make_divisible(multiplier * b, graph.spec.divisor) for g, b in base.items()}
        return _make(graph, groups, None, method="uniform", multiplier=multiplier)
    assert target_macs is not None
    groups, alpha = scale_to_macs(graph, base, target_macs)
    return _make(graph, groups, target_macs, method="uniform", multiplier=alpha)


def widths_from_groups(graph: StageGraph, groups: Mapping[str, int], *,
                       target_macs: int | None = None, **provenance: Any) -> Widths:
    """Validated Widths for this graph from a group → channels mapping."""
    return _make(graph, check_widths(graph, groups), target_macs, **provenance)


def save_widths(widths: Widths, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file, a failure leaves no file."""
    atomic_write_text(path, json.dumps(widths.to_json(), indent=2) + "\n")


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write(path: str | Path, write: Callable[[Any], Any]) -> None:
    """Write through a temporary file in the target folder, then rename it into place."""
    p = Path(path)
    if not p.parent.exists():
        raise WidthsError(f"cannot write {p}: folder {p.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise WidthsError(f"cannot write {p}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        chmod_like_new_file(Path(tmp))
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_widths_json(path: str | Path) -> Any:
    """The parsed JSON of a widths file, or a WidthsError that says why it cannot be read."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WidthsError(f"{p}: no such widths file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise WidthsError(f"{p}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise WidthsError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None


def chmod_like_new_file(path: Path) -> None:
    """mkstemp makes 0600 files; give the result the permissions open() would have."""
    mask = os.umask(0)
    os.umask(mask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~mask)


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
                  provenance=prov)


def summary(graph: StageGraph, groups: Mapping[str, int] | None = None) -> dict[str, Any]:
    """MACs and parameters, the numbers `wtc flops --json` prints."""
    macs = count_macs(graph, groups)
    return {"spec": graph.spec.name, "macs": macs, "flops": 2 * macs,
            "params": count_params(graph, groups), "resolution": graph.spec.input.resolution}

