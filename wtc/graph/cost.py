"""Analytic cost: MACs and parameters per node, for any widths, without torch.

MACs count convolutions and linear layers only (the papers' convention; bn, activations, adds
and pools are free), so they equal `torch.utils.flop_counter` FLOPs / 2 on the built module.
The per-graph cost model is precomputed once, so a bisection over widths costs microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wtc.graph.compile import StageGraph


@dataclass(frozen=True)
class _Term:
    node: str
    op: str
    coef: int  # MACs per (input channel x output channel), or per channel for depthwise
    ins: tuple[str, ...]  # groups summed into the input channel count
    outs: tuple[str, ...]  # groups summed into the output channel count
    kernel_area: int
    bias: bool


def _terms(graph: StageGraph) -> list[_Term]:
    if "terms" not in graph._cache:
        terms = []
        for n in graph.order:
            a = graph.nx.nodes[n]
            op = a["op"]
            if op not in ("conv", "dwconv", "linear", "bn"):
                continue
            area = a["kernel"] ** 2 if op in ("conv", "dwconv") else 1
            coef = area * (a["out_hw"][0] * a["out_hw"][1] if op != "linear" else 1)
            if op == "bn":
                coef = 0
            terms.append(_Term(n, op, coef, a["in_groups"], a["groups"], area,
                               bool(a.get("bias", False))))
        graph._cache["terms"] = terms
    return graph._cache["terms"]


MacTerm = tuple[str, str, int, tuple[str, ...], tuple[str, ...]]


def mac_terms(graph: StageGraph) -> list[MacTerm]:
    """(node, op, coef, input groups, output groups) of every conv, dwconv and linear node.

    MACs of the node = coef · Σ in-channels · Σ out-channels (dwconv: coef · Σ out-channels), with
    coef = H_out · W_out · k · k (1 for linear): the cost model MorphNet's regularizer weights by.
    """
    return [(t.node, t.op, t.coef, t.ins, t.outs) for t in _terms(graph) if t.op != "bn"]


def channels(graph: StageGraph, widths: Mapping[str, int] | Any | None = None) -> dict[str, int]:
    """Channel count of every group (fixed groups at their base) for `widths` (default: base)."""
    full = {g: grp.base for g, grp in graph.groups.items()}
    if widths is not None:
        full.update(getattr(widths, "groups", widths))
    return full


def node_costs(graph: StageGraph, widths: Mapping[str, int] | Any | None = None
               ) -> dict[str, tuple[int, int]]:
    """(MACs, params) of every node that has either."""
    c = channels(graph, widths)
    out: dict[str, tuple[int, int]] = {}
    for t in _terms(graph):
        cin = sum(c[g] for g in t.ins)
        cout = sum(c[g] for g in t.outs)
        if t.op == "bn":
            out[t.node] = (0, 2 * cout)
        elif t.op == "dwconv":
            out[t.node] = (t.coef * cout, t.kernel_area * cout + (cout if t.bias else 0))
        else:
            out[t.node] = (t.coef * cin * cout,
                           t.kernel_area * cin * cout + (cout if t.bias else 0))
    return out


def count_macs(graph: StageGraph, widths: Mapping[str, int] | Any | None = None) -> int:
    """Multiply-accumulates of one forward pass of one image."""
    c = channels(graph, widths)
    total = 0
    for t in _terms(graph):
        if t.op == "dwconv":
            total += t.coef * sum(c[g] for g in t.outs)
        elif t.coef:
            total += t.coef * sum(c[g] for g in t.ins) * sum(c[g] for g in t.outs)
    return total


def count_params(graph: StageGraph, widths: Mapping[str, int] | Any | None = None) -> int:
    """Trainable parameters (BN running statistics are buffers, not parameters)."""
    return sum(p for _, p in node_costs(graph, widths).values())


def cost_table(graph: StageGraph, widths: Mapping[str, int] | Any | None = None
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
