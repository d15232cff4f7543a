"""The uniform baseline: one multiplier for every group, bisected to the MACs target; no training.

At the spec's own MACs (1.0x) it returns the base widths exactly.
"""

from __future__ import annotations

from pydantic import BaseModel

from wtc.graph import count_macs
from wtc.optimizers.base import NoSettings, Optimizer, Outcome, SearchContext, register_optimizer
from wtc.widths import base_widths, uniform_widths


@register_optimizer
class Uniform(Optimizer):
    name = "uniform"
    Settings = NoSettings
    summary = "one width multiplier for all groups (the baseline); no training"

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:
        graph = ctx.graph
        base = count_macs(graph) if ctx.cost is None else ctx.cost.cost(graph)
        if ctx.target_macs == base:
            return Outcome(groups=dict(base_widths(graph).groups), details={"multiplier": 1.0})
        w = uniform_widths(graph, target_macs=ctx.target_macs, cost=ctx.cost)
        return Outcome(groups=dict(w.groups),
                       details={"multiplier": w.provenance.get("multiplier")})
