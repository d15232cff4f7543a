"""Width transfer: carry widths optimized on a cheap proxy onto the expensive target.

The pass:

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

Modules: stacking (block maps when depths differ), matching (stages, producers, groups),
projection (the proxy spec), discovery (finding the spec a widths file was made for), and
this one, the pass itself. No torch here: this package sits above the widths layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wtc.errors import TransferError, WidthsError
from wtc.graph import StageGraph, compile_spec, count_macs
from wtc.graph.costmodel import CostModel, is_default
from wtc.spec import load_spec
from wtc.widths import (
    MacsTarget,
    Widths,
    check_widths,
    cost_record,
    load_widths,
    resolve_macs,
    scale_to_macs,
    steps,
)
from wtc.widthtransfer.discovery import SourceSpec, locate_source
from wtc.widthtransfer.matching import map_groups, match_stages, unmatched_message
from wtc.widthtransfer.stacking import STACKING


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
    # the budget's cost model when not MACs (target_macs then is in its unit): model, target,
    # achieved (`wtc.widths.cost_record`)
    cost_model: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"source": self.widths.provenance.get("source"),
               "target": {"name": self.widths.spec_name, "hash": self.widths.spec_hash},
               "stacking": self.stacking, "stage_map": dict(self.stage_map),
               "alpha": self.alpha, "macs": self.macs, "target_macs": self.target_macs,
               "groups": [m.to_json() for m in self.mapping.values()],
               "unmatched": list(self.unmatched)}
        if self.cost_model is not None:
            out["cost_model"] = self.cost_model
        return out


def transfer(widths: Widths, source: StageGraph, target: StageGraph, *, stacking: str = "last",
             stage_map: Mapping[str, str] | None = None,
             target_macs: MacsTarget | float | str | None = None,
             keep_unmatched: bool = False, cost: CostModel | None = None) -> TransferResult:
    """Carry `widths` (made for `source`) onto `target`; see the module docstring.

    `cost`: the cost model the budget is counted in (None: MACs); `target_macs` is then in its
    unit (default: the target's base cost) and the one α re-matches that cost.

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
    stages = match_stages(source, target, stage_map)
    mapping_parts = map_groups(source, target, ratios, stages, stacking)

    # a group is unmatched when any of its producers has no counterpart; with keep_unmatched
    # it keeps the mean ratio of the producers that do have one (ratio 1 when none has)
    unmatched = [g for g, (_, _, miss) in mapping_parts.items() if miss]
    if unmatched and not keep_unmatched:
        raise TransferError(unmatched_message(target, source, unmatched, mapping_parts))

    direction = {g: (r if r is not None else 1.0) * target.groups[g].base
                 for g, (_, r, _) in mapping_parts.items()}
    model = None if is_default(cost) else cost
    if model is not None:
        _same_runtime(widths, model)
        model.check(target)
        budget: float = model.cost(target) if target_macs is None else float(target_macs)
    else:
        budget = resolve_macs(target, target_macs)  # MACs: `MacsTarget`, the one parser
    chans, alpha = _fit(source, target, direction, budget, model)
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
    record = None
    if model is not None:
        record = cost_record(target, model, chans, budget)
        provenance["cost_model"] = record
    out = Widths(groups=chans, spec_name=target.spec.name, spec_hash=target.spec_hash,
                 macs=macs, target_macs=budget if model is None else None,
                 provenance=provenance)
    return TransferResult(widths=out, mapping=mapping, macs=macs, target_macs=budget,
                          alpha=alpha, stacking=stacking, stage_map=dict(stages),
                          unmatched=unmatched, cost_model=record)


def _same_runtime(widths: Widths, cost: CostModel) -> None:
    """Widths searched against one runtime's latency are not re-matched on another's table."""
    was = widths.provenance.get("cost_model")
    now = cost.describe()
    if isinstance(was, dict) and was.get("runtime") and now.get("runtime") \
            and was["runtime"] != now["runtime"]:
        raise TransferError(f"the widths were searched against '{was['runtime']}' latency "
                            f"(table {was.get('table')}); the table given is for "
                            f"'{now['runtime']}': profile the target for '{was['runtime']}'")


def _fit(source: StageGraph, target: StageGraph, direction: Mapping[str, float],
         budget: float, cost: CostModel | None = None) -> tuple[dict[str, int], float]:
    """α and channels for the budget. When α = 1 already gives whole channels (on the divisor,
    or the very widths of the same spec) with exactly the budget, keep them: this is what makes
    a transfer onto the source's own spec with its own budget return the widths unchanged."""
    exact = {g: round(v) for g, v in direction.items()}
    whole = all(abs(direction[g] - exact[g]) < 1e-6 and exact[g] >= 1 for g in direction)
    same_spec = source.spec_hash == target.spec_hash
    step = steps(target)
    if whole and (same_spec or all(v % step[g] == 0 for g, v in exact.items())) \
            and (count_macs(target, exact) if cost is None else cost.cost(target, exact)) == budget:
        return exact, 1.0
    return scale_to_macs(target, direction, budget, cost=cost)


def transfer_files(widths_path: str | Path, target: str | Path, *,
                   source: str | Path | SourceSpec | None = None, stacking: str = "last",
                   stage_map: Mapping[str, str] | None = None,
                   target_macs: MacsTarget | float | str | None = None,
                   keep_unmatched: bool = False, cost: CostModel | None = None
                   ) -> tuple[TransferResult, SourceSpec]:
    """`transfer` from files, what `wtc transfer` does before writing: the source spec is
    `source` (a path, or a SourceSpec from `locate_source`) or found by the hash recorded in
    the widths file; the result's provenance names the files. Returns (result, source spec)."""
    src = source if isinstance(source, SourceSpec) else locate_source(widths_path, source)
    w = load_widths(widths_path, src.graph)
    tgt_graph = compile_spec(load_spec(target))
    result = transfer(w, src.graph, tgt_graph, stacking=stacking, stage_map=stage_map,
                      target_macs=target_macs, keep_unmatched=keep_unmatched, cost=cost)
    widths = result.widths.with_provenance(
        source={**result.widths.provenance["source"], "file": str(src.path),
                "widths_file": str(widths_path)},
        target_file=str(target))
    return replace(result, widths=widths), src
