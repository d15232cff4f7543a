"""Start a narrower network from a trained one: keep, per width group, its most important
channels (the prune-then-fine-tune path), with one rule applied to every member of the group.

Importance of a channel of group g (`IMPORTANCE`): `l1` sums, over the producers of g (the
convs and linears whose outputs are g), the L1 norm of the weights that produce the channel,
with the batch norm that follows folded in (γ / sqrt(running var + ε): a batch norm undoes
the scale of the conv's weights, so unfolded norms would rank noise), each producer's scores
divided by their mean so no layer outweighs the others; `bn` sums |γ| of the batch or layer
norms right after those producers instead. The channels of every group are
then reordered, most important first, in every member at once (producer outputs, norms,
scales, and the inputs of every consumer), which changes no output; the narrower network is
the leading channels of each group: the supernet's `extract`. At base widths it is therefore
the same function as the trained network. Narrower, the kept channels' batch-norm statistics
were measured with the removed channels upstream; `wtc train --init-from` re-estimates them
on a few training batches (`wtc.nn.bn.recalibrate_bn`, no weight changes) before training.

Groups whose channel order carries meaning keep it: a grouped conv's group (reordered in whole
groups of its group width) and groups a split, shuffle or fixed-groups conv touches (kept as
they are; their leading channels are kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from wtc.errors import CheckpointError, ConfigError
from wtc.graph import StageGraph
from wtc.nn.build import build_model, module_path
from wtc.nn.slimmable import SLICED, Supernet
from wtc.spec.ops import OPS, Channels

IMPORTANCE = ("l1", "bn")
# read from the op table: the ops whose output channels are new (their weight is cut on both
# axes; conv, linear) and the norms whose γ scores the channels of the producer before them
_PRODUCERS = frozenset(n for n in OPS if OPS.get(n).channels is Channels.NEW)
_NORMS = frozenset(n for n in OPS if OPS.get(n).norm)


def init_from_trained(graph: StageGraph, widths: Mapping[str, int], state: Mapping[str, Tensor],
                      importance: str = "l1") -> dict[str, Tensor]:
    """The state_dict of `build_model(graph, widths)` cut from `state` (a base-width model's
    weights) by keeping each group's most important channels."""
    if importance not in IMPORTANCE:
        raise ConfigError(f"unknown importance '{importance}'; choose one of: "
                          f"{', '.join(IMPORTANCE)}")
    base = build_model(graph, init=False)
    own = base.state_dict()
    bad = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        got = tuple(state[k].shape) if k in state else "missing"
        raise CheckpointError(f"the weights to start from do not fit the spec at base widths: "
                              f"'{k}' is {got}, the spec's is {tuple(own[k].shape)} (import or "
                              "train the base network of this spec first)")
    order = _orders(graph, state, importance)
    permuted = _permute(graph, dict(state), order)
    net = Supernet(graph, {g: graph.groups[g].base for g in graph.free_groups}, init=False)
    net.load_state_dict(permuted)
    return net.extract(widths).state_dict()


def _fixed_order(graph: StageGraph) -> set[str]:
    """Groups whose channel order must not change."""
    out: set[str] = set()
    for n in graph.order[1:]:
        a = graph.nx.nodes[n]
        if a["op"] in ("split", "shuffle") or (a["op"] == "conv" and a.get("num_groups", 1) > 1):
            out.update(a["groups"])
            out.update(a["in_groups"])
    return out


def _orders(graph: StageGraph, state: Mapping[str, Tensor], importance: str
            ) -> dict[str, Tensor]:
    """group → its channels, most important first (whole chunks for a grouped conv's group)."""
    fixed = _fixed_order(graph)
    orders: dict[str, Tensor] = {}
    for g in graph.free_groups:
        grp = graph.groups[g]
        if g in fixed:
            continue
        score = torch.zeros(grp.base)
        for p in grp.producers:
            v = _score(graph, state, p, importance)
            if v is not None and v.numel() == grp.base:
                score += v / v.mean().clamp_min(1e-12)
        chunk = grp.multiple
        chunks = score.reshape(-1, chunk).sum(1)
        ranked = torch.argsort(chunks, descending=True, stable=True)
        orders[g] = (ranked[:, None] * chunk + torch.arange(chunk)).reshape(-1)
    return orders


def _score(graph: StageGraph, state: Mapping[str, Tensor], producer: str, importance: str
           ) -> Tensor | None:
    a = graph.nx.nodes[producer]
    if len(a["groups"]) != 1:
        return None
    norms = [n for n in graph.nx.successors(producer) if graph.nx.nodes[n]["op"] in _NORMS]
    norm = f"{module_path(graph, norms[0])}." if norms else None
    w = state[f"{module_path(graph, producer)}.weight"].float()
    l1 = w.abs().reshape(w.shape[0], -1).sum(1)
    if norm is None:  # no norm after it: its weights decide
        return l1
    gamma = state[f"{norm}weight"].float().abs()
    if importance == "bn":
        return gamma
    if f"{norm}running_var" in state:  # the weights as they reach the next layer: BN folded in
        eps = graph.nx.nodes[norms[0]].get("eps", 1e-5)
        return l1 * gamma / (state[f"{norm}running_var"].float() + eps).sqrt()
    return l1 * gamma


def _index(parts: tuple[str, ...], base: Mapping[str, int], order: Mapping[str, Tensor]
           ) -> Tensor | None:
    """The permutation of a tensor made of these concatenated groups (None: unchanged)."""
    if not any(p in order for p in parts):
        return None
    idx, offset = [], 0
    for p in parts:
        n = base[p]
        idx.append(order[p] + offset if p in order else torch.arange(offset, offset + n))
        offset += n
    return torch.cat(idx)


def _permute(graph: StageGraph, state: dict[str, Any], order: Mapping[str, Tensor]
             ) -> dict[str, Any]:
    base = {g: grp.base for g, grp in graph.groups.items()}
    for n in graph.order[1:]:
        a = graph.nx.nodes[n]
        names = SLICED.get(a["op"])
        if names is None:
            continue
        prefix = module_path(graph, n)
        out_idx = _index(a["groups"], base, order)
        in_idx = _index(a["in_groups"], base, order) if a["op"] in _PRODUCERS else None
        for name in names:
            key = f"{prefix}.{name}"
            if key not in state:
                continue
            t = state[key]
            if out_idx is not None:
                t = t.index_select(0, out_idx)
            if name == "weight" and in_idx is not None:
                area = a.get("in_area", 1)
                if area > 1:
                    rows = t.shape[0]
                    t = t.reshape(rows, -1, area).index_select(1, in_idx).reshape(rows, -1)
                else:
                    t = t.index_select(1, in_idx)
            state[key] = t
    return state
