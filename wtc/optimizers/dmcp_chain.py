"""DMCP's Markov channel model in torch: α per group, marginals, channel gates, expected MACs,
and the MACs loss (dmcp.py has the description; this module is what gradients flow through).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn

from wtc.graph import StageGraph
from wtc.graph.cost import MacTerm, mac_terms

_F64 = torch.float64


# --------------------------------------------------------------------------- the chain layout


@dataclass(frozen=True)
class Chain:
    """One group's split of its supernet channels: `prefix` always kept, then `sizes` blocks."""

    group: str
    width: int
    prefix: int
    sizes: tuple[int, ...]

    def expected(self, marginals: Sequence[float]) -> float:
        """E[c] for the marginal keep probabilities of the blocks."""
        return self.prefix + sum(s * p for s, p in zip(self.sizes, marginals, strict=True))

    def channels(self, kept: int) -> int:
        """Channels when the first `kept` blocks are kept."""
        return self.prefix + sum(self.sizes[:kept])


def chain_layout(max_widths: Mapping[str, int], prefixes: Mapping[str, int], blocks: int,
                 steps: Mapping[str, int] | None = None) -> dict[str, Chain]:
    """Split every group's supernet width C into its always-kept prefix (at least 1 channel,
    at most C) and at most `blocks` blocks of (nearly) equal size made of whole rounding steps
    (`steps[g]`: the divisor, or a grouped conv's group width; default 1 channel), so every
    point of the chain is a width the group can have (DMCP issue #1); sizes differ by at most
    one step, no block is empty."""
    out = {}
    for g, width in max_widths.items():
        step = int(steps[g]) if steps is not None else 1
        pre = min(width, max(1, int(prefixes[g])))
        units = (width - pre) // step
        k = min(blocks, units)
        edges = [i * units // k * step for i in range(k + 1)] if k else [0]
        edges[-1] = width - pre  # a remainder below one step joins the last block
        sizes = tuple(b - a for a, b in pairwise(edges)) if k else ()
        out[g] = Chain(g, width, width - sum(sizes), sizes)
    return out


class MarkovChannels(nn.Module):
    """The architecture parameters of DMCP: one chain of keep logits α per free group with at
    least one block, initialised to 0 (every transition 0.5, as in the reference).

        chains = MarkovChannels(graph, layout)
        marg = chains.marginals()                 # group → P_k (blocks)
        net.channel_gates = chains.gates(marg)    # group → per-channel scale (prefix at 1)
        e = chains.expected_macs(marg)            # float64 tensor, differentiable in α
    """

    def __init__(self, graph: StageGraph, layout: Mapping[str, Chain],
                 terms: list[MacTerm] | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.layout = dict(layout)
        self.groups = [g for g in graph.free_groups if layout[g].sizes]
        self.alpha = nn.ParameterList(
            [nn.Parameter(torch.zeros(len(layout[g].sizes))) for g in self.groups])
        for i, g in enumerate(self.groups):
            sizes = torch.tensor(layout[g].sizes, dtype=_F64)
            self.register_buffer(f"_sizes{i}", sizes, persistent=False)
            self.register_buffer(f"_before{i}", torch.cumsum(sizes, 0) - sizes, persistent=False)
            self.register_buffer(f"_index{i}", torch.repeat_interleave(
                torch.arange(len(sizes)), torch.tensor(layout[g].sizes)), persistent=False)
        fixed = {g: grp.base for g, grp in graph.groups.items() if grp.fixed}
        # a group without blocks is a constant at its prefix (= its supernet width)
        fixed.update({g: layout[g].prefix for g in graph.free_groups if not layout[g].sizes})
        self._const = fixed
        # MACs, or another cost model's linearisation in MACs-equivalents (`CostModel.terms`)
        self._terms = mac_terms(graph) if terms is None else terms

    # ------------------------------------------------------------------ the chain

    def keep_probs(self) -> dict[str, Tensor]:
        """p_k = sigmoid(α_k): keep block k given block k−1 is kept."""
        return {g: torch.sigmoid(a) for g, a in zip(self.groups, self.alpha, strict=True)}

    def marginals(self) -> dict[str, Tensor]:
        """P_k = p_1 ⋯ p_k: the probability that block k is kept."""
        return {g: torch.cumprod(p, 0) for g, p in self.keep_probs().items()}

    def gates(self, marginals: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """group → tensor of its supernet width: 1 on the prefix, P_k on block k's channels."""
        marg = self.marginals() if marginals is None else marginals
        out = {}
        for i, g in enumerate(self.groups):
            p = marg[g]
            ones = p.new_ones(self.layout[g].prefix)
            out[g] = torch.cat([ones, p[getattr(self, f"_index{i}")]])
        return out

    def moments(self, marginals: Mapping[str, Tensor] | None = None
                ) -> dict[str, tuple[Tensor | float, Tensor | float]]:
        """group → (E[c], E[c²]) for every group (constants for fixed and blockless groups).

        c = m + Σ s_k X_k with X_k = 1[block k kept]; the chain is monotone, so
        E[X_j X_k] = P_max(j,k) and E[c²] = m² + 2m Σ s_k P_k + Σ_k P_k (s_k² + 2 s_k S_<k),
        S_<k the channels of the blocks before k."""
        marg = self.marginals() if marginals is None else marginals
        out: dict[str, tuple[Tensor | float, Tensor | float]] = {
            g: (float(c), float(c) ** 2) for g, c in self._const.items()}
        for i, g in enumerate(self.groups):
            p = marg[g].to(_F64)
            s, before = getattr(self, f"_sizes{i}"), getattr(self, f"_before{i}")
            m = float(self.layout[g].prefix)
            mean_blocks = (s * p).sum()
            e1 = m + mean_blocks
            e2 = m * m + 2 * m * mean_blocks + (p * (s * s + 2 * s * before)).sum()
            out[g] = (e1, e2)
        return out

    @torch.no_grad()
    def expected_channels(self, marginals: Mapping[str, Tensor] | None = None
                          ) -> dict[str, float]:
        """E[c] per free group, as floats (the read-out's input)."""
        mom = self.moments(marginals)
        return {g: float(mom[g][0]) for g in self.graph.free_groups}

    def expected_macs(self, marginals: Mapping[str, Tensor] | None = None) -> Tensor:
        """E[MACs] of one image under the chains (float64, differentiable in α): for each
        conv/linear, coef · Σ_a Σ_b E[c_a c_b] over its input groups a and output groups b, with
        E[c_a c_b] = E[c_a]·E[c_b] for different (independent) groups and E[c_a²] for the same;
        dwconv and gconv (fixed group width): coef · Σ_b E[c_b]."""
        mom = self.moments(marginals)
        total: Tensor | float = 0.0
        for t in self._terms:
            if t.grouped:  # dwconv, gconv: linear in the output channels
                total = total + t.coef * sum((mom[b][0] for b in t.outs), 0.0)
                continue
            acc: Tensor | float = 0.0
            for a in t.ins:
                for b in t.outs:
                    acc = acc + (mom[a][1] if a == b else mom[a][0] * mom[b][0])
            total = total + t.coef * acc
        if not isinstance(total, Tensor):
            total = torch.tensor(total, dtype=_F64)
        return total

    @torch.no_grad()
    def force(self, value: float) -> None:
        """Set every α to `value` (large positive: keep every block; large negative: prefix)."""
        for a in self.alpha:
            a.fill_(value)

    @torch.no_grad()
    def start_at(self, macs: float, lo: float = -12.0, hi: float = 12.0) -> float:
        """Set every α to the one value whose expected MACs are `macs` (bisection: the
        expected MACs grow with α); returns that value."""
        for _ in range(50):
            mid = (lo + hi) / 2
            self.force(mid)
            if float(self.expected_macs()) < macs:
                lo = mid
            else:
                hi = mid
        self.force((lo + hi) / 2)
        return (lo + hi) / 2

    @torch.no_grad()
    def snapshot(self) -> dict[str, list[float]]:
        """Marginal keep probabilities per group, as lists (the run's record and plot)."""
        return {g: [round(float(v), 5) for v in p] for g, p in self.marginals().items()}


def macs_loss(expected: Tensor, target: float, *, unit: float = 1e6, band: float = 0.95,
              far: float = 200.0, ratio: float = 0.1) -> Tensor:
    """The reference's log-L1 MACs loss, in units of `unit` MACs (MMACs; the reference's
    MFLOPs are MACs): with E the expected and T the target MACs,

        E < band·T:        log(r·|E − T|)
        band·T ≤ E < T:    0             (the dead zone just below the target)
        E ≥ T:             log(r·|E − band·T|)

    r = `ratio` when |E − T| > `far` units, else 1. Zero (with zero gradient) in the dead zone."""
    e = expected / unit
    t = float(target) / unit
    value = float(e.detach())
    if band * t <= value < t:
        return e * 0.0
    r = ratio if abs(value - t) > far else 1.0
    d = (t - e) if value < band * t else (e - band * t)
    return torch.log(r * d)
