"""Matching a target graph onto a source graph: stages (in order or by an explicit map),
producers by (stage, block, role), and each target group's ratio from its producers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wtc.errors import TransferError
from wtc.graph import StageGraph
from wtc.widthtransfer.stacking import source_blocks

Position = tuple[str, int, str]  # (stage, block index, role)
# (contributing source groups, mean ratio or None when unmatched, roles with no counterpart)
Parts = tuple[tuple[str, ...], float | None, tuple[str, ...]]


def map_groups(source: StageGraph, target: StageGraph, ratios: Mapping[str, float],
               stages: Mapping[str, str], stacking: str) -> dict[str, Parts]:
    """Per free target group: (contributing source groups, mean ratio of its producers or None,
    producer roles with no counterpart). A producer at (stage, block j, role) looks up the
    source producer(s) at (mapped stage, stacked block(s), role)."""
    by_position = producer_index(source)
    depth_s = {s.name: s.depth for s in source.stages}
    depth_t = {s.name: s.depth for s in target.stages}
    mapping_parts: dict[str, Parts] = {}
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
            for i, w in source_blocks(j, depth_t.get(stage, 1), depth_s.get(s_stage, 0), stacking):
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

    return mapping_parts


def producer_index(graph: StageGraph) -> dict[Position, str]:
    """(stage, block, role) of every producer → the free group it produces."""
    index: dict[Position, str] = {}
    for g in graph.free_groups:
        for pos in graph.groups[g].positions:
            index[pos] = g
    return index


def match_stages(source: StageGraph, target: StageGraph,
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


def unmatched_message(target: StageGraph, source: StageGraph, unmatched: list[str],
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
