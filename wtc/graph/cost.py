"""Analytic cost: MACs, parameters and memory per node, for any widths, without torch.

MACs count convolutions and linear layers only (the papers' convention; bn, activations, adds
and pools are free), so they equal `torch.utils.flop_counter` FLOPs / 2 on the built module.
The per-graph cost model is precomputed once, so a bisection over widths costs microseconds.

Each op has one cost rule (`COST`, checked against the op table at import):

    dense     conv, linear   MACs = H·W·k² · C_in · C_out / groups;  params = k²·C_in·C_out/groups
                             (a linear after a flatten of an h x w map: k² = h·w)
    grouped   dwconv, gconv  MACs = H·W·k² · group_width · C;       params = k²·group_width·C
    affine n  bn, ln: 2, scale: 1                                   params = n·C
    free      everything else

(+ C_out parameters for a bias; H, W the output size; C_in/C_out sums over concatenated parts.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from wtc.errors import SpecError
from wtc.graph.compile import StageGraph
from wtc.limits import human_bytes, max_memory
from wtc.registry import Registry
from wtc.spec.ops import OPS

COST: Registry[tuple[str, int]] = Registry("cost rule")  # op → (rule, affine parameters)
for _op, _rule in {
    "conv": ("dense", 0), "linear": ("dense", 0), "dwconv": ("grouped", 0),
    "gconv": ("grouped", 0), "bn": ("affine", 2), "ln": ("affine", 2), "scale": ("affine", 1),
    **dict.fromkeys(("act", "droppath", "maxpool", "avgpool", "gap", "adaptive_avgpool",
                     "flatten", "dropout",
                     "identity", "add", "mul", "concat", "split", "shuffle"), ("free", 0)),
}.items():
    COST.add(_op, _rule)
if set(COST) != set(OPS.names()):  # pragma: no cover - a new op without a cost rule
    raise RuntimeError(f"ops without a cost rule: {sorted(set(OPS.names()) - set(COST))}; "
                       f"cost rules without an op: {sorted(set(COST) - set(OPS.names()))}")

BYTES_PER_VALUE = 4  # float32
TRAIN_PER_FORWARD = 3  # a training step's MACs ≈ 3 × its forward pass's (forward + backward)


def training_macs(forward_macs: float, images: float = 1) -> float:
    """Training MACs of `images` images through a network of `forward_macs` per image (or of
    `forward_macs` forward MACs in all, with the default one image): the one place the
    forward + backward ≈ 3 × forward convention is written (an int for int inputs)."""
    return TRAIN_PER_FORWARD * forward_macs * images


@dataclass(frozen=True)
class _Term:
    node: str
    kind: str  # dense | grouped | affine
    coef: int  # dense: H·W·k² (1 for linear); grouped: H·W·k²·group_width; affine: 0
    ins: tuple[str, ...]  # groups summed into the input channel count
    outs: tuple[str, ...]  # groups summed into the output channel count
    weights: int  # parameters per (C_in·C_out) (dense: k²), per C (grouped: k²·gw; affine: n)
    groups: int  # dense: the conv's groups
    bias: bool


def _terms(graph: StageGraph) -> list[_Term]:
    return graph.derived("cost.terms", lambda: _make_terms(graph))


def _make_terms(graph: StageGraph) -> list[_Term]:
    terms = []
    for n in graph.order[1:]:
        a = graph.nx.nodes[n]
        kind, n_affine = COST.get(a["op"])
        if kind == "free":
            continue
        # a linear after a flatten of an H x W map reads H·W inputs per channel
        area = a["kernel"] ** 2 if "kernel" in a else a.get("in_area", 1)
        hw = a["out_hw"][0] * a["out_hw"][1] if a["out_hw"] is not None else 1
        gw = a.get("group_width", 1)
        coef, weights = {"dense": (area * hw, area), "grouped": (area * hw * gw, area * gw),
                         "affine": (0, n_affine)}[kind]
        terms.append(_Term(n, kind, coef, a["in_groups"], a["groups"], weights,
                           a.get("num_groups", 1), bool(a.get("bias", False))))
    return terms


@dataclass(frozen=True)
class MacTerm:
    """One conv or linear node in the form MorphNet's regularizer weights by:

    dense:   MACs = coef · Σ in-channels · Σ out-channels   (coef = H·W·k² / groups)
    grouped: MACs = coef · Σ out-channels                   (coef = H·W·k² · group width)
    """

    node: str
    grouped: bool
    coef: float
    ins: tuple[str, ...]
    outs: tuple[str, ...]


def mac_terms(graph: StageGraph) -> list[MacTerm]:
    """Every node that has MACs (conv, gconv, dwconv, linear), with its MACs coefficient."""
    return [MacTerm(t.node, t.kind == "grouped",
                    t.coef / t.groups if t.kind == "dense" else float(t.coef), t.ins, t.outs)
            for t in _terms(graph) if t.kind != "affine"]


class HasGroups(Protocol):
    """Anything with free-group channels (a `wtc.widths.Widths`, a layer above this one)."""

    @property
    def groups(self) -> Mapping[str, int]: ...


def channels(graph: StageGraph, widths: Mapping[str, int] | HasGroups | None = None
             ) -> dict[str, int]:
    """Channel count of every group (fixed groups at their base) for `widths` (default: base)."""
    full = {g: grp.base for g, grp in graph.groups.items()}
    if widths is not None:
        full.update(widths if isinstance(widths, Mapping) else widths.groups)
    return full


def _cost(t: _Term, c: Mapping[str, int]) -> tuple[int, int]:
    cout = sum(c[g] for g in t.outs)
    bias = cout if t.bias else 0
    if t.kind == "dense":
        cin = sum(c[g] for g in t.ins)
        return t.coef * cin * cout // t.groups, t.weights * cin * cout // t.groups + bias
    if t.kind == "grouped":
        return t.coef * cout, t.weights * cout + bias
    return 0, t.weights * cout


def node_costs(graph: StageGraph, widths: Mapping[str, int] | HasGroups | None = None
               ) -> dict[str, tuple[int, int]]:
    """(MACs, params) of every node that has either."""
    c = channels(graph, widths)
    return {t.node: _cost(t, c) for t in _terms(graph)}


def count_macs(graph: StageGraph, widths: Mapping[str, int] | HasGroups | None = None) -> int:
    """Multiply-accumulates of one forward pass of one image."""
    c = channels(graph, widths)
    total = 0
    for t in _terms(graph):
        if t.kind == "dense":
            total += t.coef * sum(c[g] for g in t.ins) * sum(c[g] for g in t.outs) // t.groups
        elif t.kind == "grouped":
            total += t.coef * sum(c[g] for g in t.outs)
    return total


def count_params(graph: StageGraph, widths: Mapping[str, int] | HasGroups | None = None) -> int:
    """Trainable parameters (BN running statistics are buffers, not parameters)."""
    return sum(p for _, p in node_costs(graph, widths).values())


def cost_table(graph: StageGraph, widths: Mapping[str, int] | HasGroups | None = None
               ) -> list[dict[str, Any]]:
    """MACs and parameters per stage, in order (`wtc show`)."""
    per_node = node_costs(graph, widths)
    rows: dict[str, dict[str, Any]] = {}
    for n in graph.order[1:]:
        a = graph.nx.nodes[n]
        row = rows.setdefault(a["stage"], {"stage": a["stage"], "macs": 0, "params": 0})
        m, p = per_node.get(n, (0, 0))
        row["macs"] += m
        row["params"] += p
    return list(rows.values())


def estimate_memory(graph: StageGraph, widths: Mapping[str, int] | HasGroups | None = None
                    ) -> dict[str, Any]:
    """Bytes the built model needs at least: float32 parameters, plus the activations one image
    leaves for the backward pass (every op's output; a batch of B needs B times these).
    `stages` holds each stage's share, to say where a model is too big."""
    c = channels(graph, widths)
    per_node = node_costs(graph, widths)
    stages: dict[str, int] = {}
    params = activations = 0
    for n in graph.order:
        a = graph.nx.nodes[n]
        hw = a["out_hw"][0] * a["out_hw"][1] if a["out_hw"] is not None else 1
        act = hw * sum(c[g] for g in a["groups"])
        par = per_node.get(n, (0, 0))[1]
        params += par
        activations += act
        stages[a["stage"]] = stages.get(a["stage"], 0) + BYTES_PER_VALUE * (act + par)
    return {"params": BYTES_PER_VALUE * params, "activations": BYTES_PER_VALUE * activations,
            "total": BYTES_PER_VALUE * (params + activations), "stages": stages}


def check_memory(graph: StageGraph, widths: Mapping[str, int] | HasGroups | None = None,
                 limit: int | None = None) -> dict[str, Any]:
    """The memory estimate, or a SpecError located at the biggest stage when it is over `limit`
    (default: `wtc.limits.max_memory()`, half the RAM unless WTC_MAX_MEMORY says otherwise)."""
    est = estimate_memory(graph, widths)
    if limit is None:
        limit = max_memory()
        source = ("WTC_MAX_MEMORY" if os.environ.get("WTC_MAX_MEMORY") else
                  "half this machine's RAM; set WTC_MAX_MEMORY to change it")
    else:
        source = "the limit given"
    if est["total"] <= limit:
        return est
    worst = max(est["stages"], key=lambda s: est["stages"][s])
    spec = graph.spec
    names = [s.name for s in spec.stages]
    path = (f"stages[{names.index(worst)}]" if worst in names else
            worst if worst in ("stem", "head") else "input")
    at = " at these widths" if widths is not None else ""
    raise SpecError(
        f"the built model would need about {human_bytes(est['total'])}{at} "
        f"({human_bytes(est['params'])} of parameters + {human_bytes(est['activations'])} of "
        f"activations for one {spec.input.resolution} px image; '{worst}' alone "
        f"{human_bytes(est['stages'][worst])}), over the limit of {human_bytes(limit)} "
        f"({source})",
        file=spec.source, line=spec.line_of(path), path=path)
