"""Capacity: the most MACs a latency (or parameter) budget buys; no training.

Uniform widths at the budget, then width exchanges between groups at a fixed cost
(`wtc.widths.exchange`): channels move from groups where a MAC costs more time on the latency
table (depthwise layers, tiny maps) to groups where it costs less. Only meaningful under a cost
model other than MACs (under a MACs budget it would be the uniform baseline), so it needs
`--cost latency:TABLE` or `--cost params`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wtc.errors import ConfigError
from wtc.graph import StageGraph, count_macs
from wtc.optimizers.base import Optimizer, Outcome, SearchContext, register_optimizer
from wtc.widths import uniform_widths
from wtc.widths.exchange import most_macs_within


class CapacitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    band: float = Field(2.0, ge=1.0, le=4.0, description="each group within [u/band, "
                        "u·band] of its uniform width u at the budget")
    candidates: int = Field(24, ge=1, le=256, description="grows repaired per round (the most "
                            "MACs per unit of cost first)")
    max_rounds: int = Field(400, ge=1, le=10_000, description="exchanges at most")


@register_optimizer
class Capacity(Optimizer):
    name = "capacity"
    Settings = CapacitySettings
    needs_cost_model = True
    summary = ("the most MACs a latency or parameter budget buys (needs --cost other than "
               "macs); no training")

    def check(self, ctx: SearchContext, settings: BaseModel) -> None:
        if ctx.cost is None and self.needs_cost_model:
            raise ConfigError("method 'capacity' trades MACs against another cost; give "
                              "--cost latency:TABLE (a table from `wtc profile`) or --cost "
                              "params (under a MACs budget it would be the uniform baseline: "
                              "--method uniform)")

    @staticmethod
    def estimate_train_macs(graph: StageGraph, settings: Any, *, images: float,
                            target_macs: int, val_images: float = 0.0) -> int | None:
        """No training: the search reads only the cost model."""
        return 0

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:
        assert isinstance(settings, CapacitySettings)
        graph, cost = ctx.graph, ctx.cost
        start = uniform_widths(graph, target_macs=ctx.target_macs, cost=cost)
        groups = most_macs_within(graph, cost, ctx.target_macs, start.groups,
                                  band=settings.band, candidates=settings.candidates,
                                  max_rounds=settings.max_rounds)
        uniform_macs = count_macs(graph, start.groups)
        return Outcome(groups=groups, details={
            "multiplier": start.provenance.get("multiplier"),
            "uniform_macs": uniform_macs,
            "macs_over_uniform": round(count_macs(graph, groups) / uniform_macs, 4)})
