"""MorphNet's MACs-weighted gamma regularizer over the graph's width groups (torch).

Per free width group g, the regularization vector r_g is the element-wise max of |γ| over the
group's member norm layers (BN, and layer norm for ConvNeXt-style blocks: the ops the op table
marks `norm`; aligned by channel index; a BN after a concat carries several groups, sliced in
order) and a channel is alive if r_g > threshold (any member alive). For every conv / linear
node L with MACs coefficient C_L (H_out·W_out·k·k / groups, from the graph's cost model):

    R_L = C_L · (|A_in| · Σ r_out + |A_out| · Σ r_in)
    grouped (dwconv, gconv; C_L = H_out·W_out·k·k·group width): C_L · (Σ r_in + Σ r_out)

where |A| are alive counts (constants in the gradient) and Σ r the L1 norms of the other side
(MorphNet's regularizer). Groups with no BN (e.g. a squeeze-excite reduction with a bias) and the
fixed groups (input, logits) count their channels as a constant and carry no gamma.
Everything is read from the StageGraph, so every block family and user template works.
`GammaHooks` trains with λ·G through the trainer's hooks (MorphNet's structure learning).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from wtc.graph import StageGraph, count_macs
from wtc.graph.cost import MacTerm, channels, mac_terms
from wtc.nn import module_path
from wtc.spec.ops import OPS
from wtc.trainer import TrainHooks
from wtc.trainer.state import unwrap


class GammaRegularizer:
    """G(model) for one built model; `alive()` reads the alive channel count per group."""

    def __init__(self, graph: StageGraph, model: nn.Module, threshold: float = 1e-2,
                 terms: list[MacTerm] | None = None) -> None:
        self.graph, self.threshold = graph, float(threshold)
        widths = getattr(model, "widths", None)
        self.width = channels(graph, widths)  # every group, fixed ones at their base
        members: dict[str, list[tuple[Tensor, Tensor, int]]] = defaultdict(list)
        for n in graph.order:
            a = graph.nx.nodes[n]
            if a["op"] == "input" or not OPS.get(a["op"]).norm:
                continue
            bn = model.get_submodule(module_path(graph, n))
            if not isinstance(bn, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) \
                    or bn.weight is None:
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
        # MACs terms, or another cost model's linearisation (`CostModel.terms`: per-node
        # cost per MAC at the base widths, normalised to the base MACs)
        self.terms = mac_terms(graph) if terms is None else terms
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
        for t in self.terms:
            coef, ins, outs = t.coef, t.ins, t.outs
            l1_in = sum((l1[g] for g in ins if g in l1), 0.0)
            l1_out = sum((l1[g] for g in outs if g in l1), 0.0)
            if t.grouped:
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

    def sign_state(self) -> dict[str, Tensor]:
        """The signs `clip_at_zero` remembers, by stable keys (for a checkpoint)."""
        return {name: self._signs[(id(w), off)].clone()
                for name, (w, off) in self._named_members().items()
                if (id(w), off) in self._signs}

    def load_sign_state(self, state: dict[str, Tensor]) -> None:
        """Restore what `sign_state` returned (a resumed run clips like an uninterrupted one)."""
        for name, (w, off) in self._named_members().items():
            if name in state:
                self._signs[(id(w), off)] = state[name].to(w.device)

    def _named_members(self) -> dict[str, tuple[Tensor, int]]:
        return {f"{g}/{k}": (weight, off) for g in self.gated
                for k, (weight, _, off) in enumerate(self.members[g])}

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


def alive_macs(graph: StageGraph, alive: dict[str, int], current: dict[str, int]) -> int:
    """MACs of the network cut to its alive channels (groups without BN as they are; at least
    one channel per group)."""
    return count_macs(graph, {g: max(1, alive.get(g, current[g])) for g in current})


class GammaHooks(TrainHooks):
    """Structure learning: the task loss plus λ·G each step; truncated L1 (`clip_at_zero`)
    before each training forward; at each epoch's end the regularizer's statistics (merged
    into the epoch row) and, with `zero_dead`, dead γ set to 0."""

    def __init__(self, reg: GammaRegularizer, lam: float, *, zero_dead: bool = True,
                 clip_at_zero: bool = True,
                 cut_macs: Callable[[dict[str, int]], int] | None = None) -> None:
        self.reg, self.lam = reg, float(lam)
        self.zero_dead, self.clip_at_zero = zero_dead, clip_at_zero
        self.cut_macs = cut_macs

    def step(self, model: nn.Module, x: Tensor, y: Tensor, criterion: nn.Module,
             backward: Callable[[Tensor], None]) -> tuple[Tensor, Tensor]:
        if self.clip_at_zero:
            self.reg.clip_at_zero()
        logits = model(x)
        loss = criterion(logits, y)
        backward(loss + self.lam * self.reg(unwrap(model)))
        return loss.detach(), logits

    def end_epoch(self, model: nn.Module, epoch: int) -> dict[str, Any] | None:
        with torch.no_grad():
            g_value = float(self.reg())
        alive = self.reg.alive()
        dead = self.reg.zero_dead() if self.zero_dead else None
        return {"alive": sum(alive.values()), "regularizer": self.lam * g_value,
                "dead_zeroed": dead,
                "alive_macs": self.cut_macs(alive) if self.cut_macs is not None else None}

    def state_dict(self) -> dict[str, Any]:
        signs = self.reg.sign_state() if self.clip_at_zero else {}
        return {"signs": signs} if signs else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reg.load_sign_state(state.get("signs", {}))
