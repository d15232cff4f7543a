"""MorphNet's MACs-weighted gamma regularizer over the graph's width groups (torch).

Per free width group g, the regularization vector r_g is the element-wise max of |γ| over the
group's member BN layers (aligned by channel index; a BN after a concat carries several groups,
sliced in order) and a channel is alive if r_g > threshold (any member alive). For every conv /
linear node L with MACs coefficient C_L (H_out·W_out·k·k, from the graph's cost model):

    R_L = C_L · (|A_in| · Σ r_out + |A_out| · Σ r_in)        dwconv: C_L · (Σ r_in + Σ r_out)

where |A| are alive counts (constants in the gradient) and Σ r the L1 norms of the other side
(algorithms.md §2.2). Groups with no BN (e.g. a squeeze-excite reduction with a bias) and the
fixed groups (input, logits) count their channels as a constant and carry no gamma.
Everything is read from the StageGraph, so every block family and user template works.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor, nn

from wtc.build import module_path
from wtc.graph import StageGraph
from wtc.graph.cost import channels, mac_terms


class GammaRegularizer:
    """G(model) for one built model; `alive()` reads the alive channel count per group."""

    def __init__(self, graph: StageGraph, model: nn.Module, threshold: float = 1e-2) -> None:
        self.graph, self.threshold = graph, float(threshold)
        widths = getattr(model, "widths", None)
        self.width = channels(graph, widths)  # every group, fixed ones at their base
        members: dict[str, list[tuple[Tensor, Tensor, int]]] = defaultdict(list)
        for n in graph.order:
            a = graph.nx.nodes[n]
            if a["op"] != "bn":
                continue
            bn = model.get_submodule(module_path(graph, n))
            if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or bn.weight is None:
                continue
            offset = 0
            for g in a["groups"]:
                if not graph.groups[g].fixed:
                    members[g].append((bn.weight, bn.bias, offset))
                offset += self.width[g]
            if offset != bn.weight.numel():
                raise RuntimeError(f"BN {n} has {bn.weight.numel()} channels, the graph says "
                                   f"{offset}")
        self.members = dict(members)
        self.gated = [g for g in graph.free_groups if g in self.members]
        self.ungated = [g for g in graph.free_groups if g not in self.members]
        self.terms = mac_terms(graph)
        self._signs: dict[tuple[int, int], Tensor] = {}

    def vectors(self) -> dict[str, Tensor]:
        """r_g = max over member BNs of |γ| (per channel), for every gated group."""
        out = {}
        for g in self.gated:
            w = self.width[g]
            parts = [weight[off:off + w].abs() for weight, _, off in self.members[g]]
            out[g] = parts[0] if len(parts) == 1 else torch.stack(parts).amax(0)
        return out

    def __call__(self, model: nn.Module | None = None) -> Tensor:
        """G = Σ_L R_L (differentiable in the gammas; alive counts are constants)."""
        r = self.vectors()
        l1: dict[str, Tensor | float] = {g: v.sum() for g, v in r.items()}
        count: dict[str, Tensor | float] = {
            g: (v.detach() > self.threshold).sum().to(v.dtype) for g, v in r.items()}
        total: Tensor | float = 0.0
        for _, op, coef, ins, outs in self.terms:
            l1_in = sum((l1[g] for g in ins if g in l1), 0.0)
            l1_out = sum((l1[g] for g in outs if g in l1), 0.0)
            if op == "dwconv":
                total = total + coef * (l1_in + l1_out)
                continue
            n_in = sum((count.get(g, self.width[g]) for g in ins), 0.0)
            n_out = sum((count.get(g, self.width[g]) for g in outs), 0.0)
            total = total + coef * (n_in * l1_out + n_out * l1_in)
        if not isinstance(total, Tensor):
            total = torch.zeros(())
        return total

    @torch.no_grad()
    def alive(self) -> dict[str, int]:
        """Alive channels per gated group: any member's |γ| above the threshold."""
        return {g: int((v > self.threshold).sum()) for g, v in self.vectors().items()}

    @torch.no_grad()
    def clip_at_zero(self) -> None:
        """Truncated L1 (Tsuruoka et al. 2009): a γ whose sign flipped since the last call is
        set to 0 instead of oscillating around it, so a step of the L1 gradient cannot carry a
        dead channel above the alive threshold. Call between optimizer steps."""
        for g in self.gated:
            for weight, _, off in self.members[g]:
                w = weight[off:off + self.width[g]]
                key = (id(weight), off)
                prev = self._signs.get(key)
                cur = torch.sign(w)
                if prev is not None:
                    crossed = prev * cur < 0
                    w[crossed] = 0.0
                    cur = torch.where(cur == 0, prev, cur)
                self._signs[key] = cur

    @torch.no_grad()
    def zero_dead(self) -> int:
        """Set γ of dead channels (every member at or below threshold) to exactly 0, so they stay
        below the threshold unless the task loss regrows them; β is kept (the channel's constant
        output may serve as a bias downstream, and zeroing it would change the function).
        Returns how many group channels are dead."""
        dead_total = 0
        for g, v in self.vectors().items():
            dead = v <= self.threshold
            dead_total += int(dead.sum())
            if not bool(dead.any()):
                continue
            w = self.width[g]
            for weight, _, off in self.members[g]:
                weight[off:off + w][dead] = 0.0
        return dead_total
