"""Width transfer: carry widths optimized on a cheap proxy onto the expensive target.

DESIGN.md "Transfer", reference/algorithms.md §1.3-1.4:

1. ratio per source group = optimized width / base width;
2. stages are matched in order (equal counts), or by an explicit map target stage → source
   stage; stem ↔ stem, head ↔ head;
3. each target group is mapped through its PRODUCERS: a producer at (stage, block j, role) looks
   up the source producer(s) at (mapped stage, mapped block(s), role), where the block map is the
   stacking rule (`last`, `average`, `interpolate`) when depths differ; the group's ratio is the
   mean over its producers. Residual (stage-shared) groups therefore map stage to stage, and a
   depth-1 MobileNetV2 stage (a "block" group) still meets the "res" group of a deeper stage;
4. target width = α · ratio · target base width, rounded to the divisor, with one α
   (`wtc.widths.scale_to_macs`) so the target meets its MACs budget (default: its base MACs);
   that function also nudges single groups by one divisor step when one α misses by more
   than 1% (small networks, coarse divisor);
5. the result carries the mapping, the MACs achieved and the groups with no counterpart.

No torch here: this module sits above the graph layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wtc._callable import make_module_callable
from wtc.errors import TransferError, WidthsError
from wtc.graph import StageGraph, count_macs
from wtc.spec.schema import Spec
from wtc.widths import Widths, check_widths, scale_to_macs

__all__ = ["STACKING", "GroupMapping", "TransferResult", "project_spec", "transfer"]

STACKING = ("last", "average", "interpolate")

Position = tuple[str, int, str]  # (stage, block index, role)


@dataclass(frozen=True)
class GroupMapping:
    """Where one target group's width came from."""

    group: str
    kind: str
    stage: str
    base: int  # the target's base width
    sources: tuple[str, ...]  # source groups that contributed
    ratio: float  # mean optimized/base ratio of those source groups (1.0 when unmatched)
    width: int  # the transferred width
    missing: tuple[str, ...] = ()  # producer roles of this group with no source counterpart

    @property
    def matched(self) -> bool:
        return bool(self.sources)

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "kind": self.kind, "stage": self.stage, "base": self.base,
                "sources": list(self.sources), "ratio": self.ratio, "width": self.width,
                "missing": list(self.missing)}


@dataclass(frozen=True)
class TransferResult:
    """The target's widths, and how each of its groups was mapped."""

    widths: Widths
    mapping: dict[str, GroupMapping]  # target group id → its mapping
    macs: int
    target_macs: int
    alpha: float
    stacking: str
    stage_map: dict[str, str]  # target stage → source stage (stem and head included)
    # target groups with a producer that has no counterpart (see GroupMapping.missing)
    unmatched: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.widths.provenance.get("source"),
                "target": {"name": self.widths.spec_name, "hash": self.widths.spec_hash},
                "stacking": self.stacking, "stage_map": dict(self.stage_map),
                "alpha": self.alpha, "macs": self.macs, "target_macs": self.target_macs,
                "groups": [m.to_json() for m in self.mapping.values()],
                "unmatched": list(self.unmatched)}


def project_spec(spec: Spec, *, width: float | None = None, depth: float | None = None,
                 depths: Sequence[int] | None = None, resolution: int | None = None,
                 classes: int | None = None, name: str | None = None) -> Spec:
    """The cheap proxy of a spec: narrower (`width`), shallower (`depth` multiplier or exact
    per-stage `depths`), smaller images (`resolution`), fewer `classes`. A thin wrapper over
    `Spec.scaled`; raises SpecError for impossible projections."""
    return spec.scaled(width=width, depth=depth, depths=depths, resolution=resolution,
                       classes=classes, name=name)


def transfer(widths: Widths, source: StageGraph, target: StageGraph, *, stacking: str = "last",
             stage_map: Mapping[str, str] | None = None, target_macs: int | None = None,
             keep_unmatched: bool = False) -> TransferResult:
    """Carry `widths` (made for `source`) onto `target`; see the module docstring.

    Raises TransferError when stages cannot be matched (different counts and no map, a bad
    map) or a target group has no counterpart (unless `keep_unmatched`: such groups keep
    ratio 1); WidthsError when `widths` does not fit `source`; TargetError when the budget
    cannot be met.
    """
    if stacking not in STACKING:
        raise TransferError(f"unknown stacking rule '{stacking}'; choose one of "
                            + ", ".join(STACKING))
    groups = check_widths(source, widths.groups, f"widths for '{widths.spec_name}'")
    if widths.spec_hash != source.spec_hash:
        raise WidthsError(f"the widths were made for spec '{widths.spec_name}' (hash "
                          f"{widths.spec_hash}), not for the source spec '{source.spec.name}' "
                          f"(hash {source.spec_hash}); pass the spec they were made for")
    ratios = {g: groups[g] / source.groups[g].base for g in groups}
    stages = _match_stages(source, target, stage_map)
    by_position = _producer_index(source)
    depth_s = {s.name: s.depth for s in source.stages}
    depth_t = {s.name: s.depth for s in target.stages}

    mapping_parts: dict[str, tuple[tuple[str, ...], float | None, tuple[str, ...]]] = {}
    for g in target.free_groups:
        grp = target.groups[g]
        found: list[float] = []
        contributors: dict[str, None] = {}
        missing: dict[str, None] = {}
        for stage, j, role in grp.positions:
            s_stage = stages.get(stage)
            if s_stage is None:
                missing[f"{stage}:{role}"] = None
                continue
            total, weight = 0.0, 0.0
            for i, w in _blocks(j, depth_t.get(stage, 1), depth_s.get(s_stage, 0), stacking):
                src = by_position.get((s_stage, i, role))
                if src is None or src not in ratios:
                    continue
                contributors[src] = None
                total += w * ratios[src]
                weight += w
            if weight > 0:
                found.append(total / weight)
            else:
                missing[f"{stage}:{role}"] = None
        ratio = sum(found) / len(found) if found else None
        mapping_parts[g] = (tuple(contributors), ratio, tuple(missing))

    # a group is unmatched when any of its producers has no counterpart; with keep_unmatched
    # it keeps the mean ratio of the producers that do have one (ratio 1 when none has)
    unmatched = [g for g, (_, _, miss) in mapping_parts.items() if miss]
    if unmatched and not keep_unmatched:
        raise TransferError(_unmatched_message(target, source, unmatched, mapping_parts))

    direction = {g: (r if r is not None else 1.0) * target.groups[g].base
                 for g, (_, r, _) in mapping_parts.items()}
    base_macs = count_macs(target)
    budget = base_macs if target_macs is None else int(target_macs)
    chans, alpha = _fit(source, target, direction, budget)
    macs = count_macs(target, chans)

    mapping = {g: GroupMapping(group=g, kind=target.groups[g].kind, stage=target.groups[g].stage,
                               base=target.groups[g].base, sources=srcs,
                               ratio=1.0 if r is None else r, width=chans[g], missing=miss)
               for g, (srcs, r, miss) in mapping_parts.items()}
    provenance = {
        "method": "transfer",
        "source": {"spec": source.spec.name, "hash": source.spec_hash,
                   "file": source.spec.source, "method": widths.provenance.get("method")},
        "rule": stacking, "alpha": alpha, "stage_map": dict(stages),
        "keep_unmatched": keep_unmatched, "unmatched": list(unmatched),
        "source_provenance": dict(widths.provenance),
    }
    out = Widths(groups=chans, spec_name=target.spec.name, spec_hash=target.spec_hash,
                 macs=macs, target_macs=budget, provenance=provenance)
    return TransferResult(widths=out, mapping=mapping, macs=macs, target_macs=budget,
                          alpha=alpha, stacking=stacking, stage_map=dict(stages),
                          unmatched=unmatched)


def _fit(source: StageGraph, target: StageGraph, direction: Mapping[str, float],
         budget: int) -> tuple[dict[str, int], float]:
    """α and channels for the budget. When α = 1 already gives whole channels (on the divisor,
    or the very widths of the same spec) with exactly the budget, keep them: this is what makes
    a transfer onto the source's own spec with its own budget return the widths unchanged."""
    exact = {g: round(v) for g, v in direction.items()}
    whole = all(abs(direction[g] - exact[g]) < 1e-6 and exact[g] >= 1 for g in direction)
    same_spec = source.spec_hash == target.spec_hash
    div = target.spec.divisor
    if whole and (same_spec or all(v % div == 0 for v in exact.values())) \
            and count_macs(target, exact) == budget:
        return exact, 1.0
    return scale_to_macs(target, direction, budget)


def _blocks(j: int, n_t: int, n_s: int, rule: str) -> list[tuple[int, float]]:
    """Source block(s) and weights for target block `j` of a stage with `n_t` target and `n_s`
    source blocks, by the stacking rule."""
    if n_s <= 0:
        return []
    if n_t == n_s:
        return [(j, 1.0)]
    if rule == "last":
        return [(min(j, n_s - 1), 1.0)]
    if rule == "average":
        if j < n_s:
            return [(j, 1.0)]
        return [(i, 1.0) for i in range(n_s)]  # the mean of the stage's source blocks
    # interpolate: relative position j/(n_t-1) in the target ↔ (n_s-1)·pos in the source
    pos = j / (n_t - 1) if n_t > 1 else 0.0
    x = (n_s - 1) * pos
    lo = min(math.floor(x + 1e-9), n_s - 1)
    frac = x - lo
    if frac <= 1e-9 or lo + 1 >= n_s:
        return [(lo, 1.0)]
    return [(lo, 1.0 - frac), (lo + 1, frac)]


def _producer_index(graph: StageGraph) -> dict[Position, str]:
    """(stage, block, role) of every producer → the free group it produces."""
    index: dict[Position, str] = {}
    for g in graph.free_groups:
        for pos in graph.groups[g].positions:
            index[pos] = g
    return index


def _match_stages(source: StageGraph, target: StageGraph,
                  stage_map: Mapping[str, str] | None) -> dict[str, str]:
    """Target stage → source stage. In order when the counts agree; an explicit map overrides
    (and is required when the counts differ). Stem ↔ stem and head ↔ head always."""
    s_names = [s.name for s in source.spec.stages]
    t_names = [s.name for s in target.spec.stages]
    matched: dict[str, str] = {}
    if len(s_names) == len(t_names):
        matched.update(zip(t_names, s_names, strict=True))
    elif not stage_map:
        raise TransferError(
            f"the source '{source.spec.name}' has {len(s_names)} stages ({', '.join(s_names)}) "
            f"and the target '{target.spec.name}' has {len(t_names)} ({', '.join(t_names)}); "
            "give a stage map target=source for every target stage, e.g. "
            f"--stage-map {t_names[0]}={s_names[0]},...")
    if stage_map:
        bad_t = [t for t in stage_map if t not in t_names]
        bad_s = [s for s in stage_map.values() if s not in s_names]
        problems = []
        if bad_t:
            problems.append(f"unknown target stage(s) {_quoted(bad_t)} (target stages: "
                            f"{', '.join(t_names)})")
        if bad_s:
            problems.append(f"unknown source stage(s) {_quoted(bad_s)} (source stages: "
                            f"{', '.join(s_names)})")
        if problems:
            raise TransferError("bad stage map: " + "; ".join(problems))
        matched.update(stage_map)
        left = [t for t in t_names if t not in matched]
        if left:
            raise TransferError(
                f"the stage map does not say which source stage feeds target stage(s) "
                f"{_quoted(left)}; map every target stage (source stages: {', '.join(s_names)})")
    matched = {"stem": "stem", **{t: matched[t] for t in t_names}, "head": "head"}
    return matched


def _unmatched_message(target: StageGraph, source: StageGraph, unmatched: list[str],
                       parts: Mapping[str, tuple[Any, Any, tuple[str, ...]]]) -> str:
    shown = []
    for g in unmatched[:6]:
        roles = ", ".join(f"role '{m.split(':', 1)[1]}' in {m.split(':', 1)[0]}"
                          for m in parts[g][2])
        shown.append(f"group '{g}' ({roles})")
    more = f" and {len(unmatched) - 6} more group(s)" if len(unmatched) > 6 else ""
    return (f"no counterpart in the source '{source.spec.name}' for {'; '.join(shown)}{more} "
            f"of the target '{target.spec.name}': the matched source stage has no layer with "
            "that role. Transfer between specs of one family (same blocks), or keep those "
            "groups at the ratio of their matched layers (1 if none) with keep_unmatched "
            "(--keep-unmatched)")


def _quoted(items: Sequence[str]) -> str:
    return ", ".join(f"'{x}'" for x in items)


make_module_callable(__name__, "transfer")
