"""MorphNet (Gordon et al., CVPR 2018; algorithms.md §2): shrink, then expand.

1. Train with task loss + λ·G, G the MACs-weighted L1 on BN γ per width group (gamma.py),
   at a constant learning rate (structure learning: no decay).
2. Read the alive channels per group (|γ| > threshold in any member).
3. Expand uniformly: one α so that α · alive meets the MACs target (`scale_to_macs`, rounded to
   the divisor); a group with no alive channel keeps one divisor's worth.
4. Optionally repeat from the expanded widths (`rounds`), each round trained from scratch.
λ = `lam` if given, else `strength` / (MACs of the base network), the README's "around
1/initial cost" rule. Groups without BN (nothing to read) follow the mean shrink of the others.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wtc.graph import count_macs
from wtc.optimizers.base import Optimizer, Outcome, SearchContext, register_optimizer
from wtc.widths import scale_to_macs


class MorphNetSettings(BaseModel):
    """MorphNet hyper-parameters (structure learning with a constant learning rate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(2, ge=1, description="structure-learning epochs per round")
    strength: float = Field(5.0, gt=0.0, description="λ = strength / base MACs")
    lam: float | None = Field(None, gt=0.0, description="absolute λ (overrides strength)")
    threshold: float = Field(1e-2, gt=0.0, description="alive if |γ| > threshold")
    lr: float = Field(0.05, gt=0.0, description="constant learning rate (no decay)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0, description="on conv/linear weights only")
    rounds: int = Field(1, ge=1, le=10, description="shrink/expand repetitions")
    zero_dead: bool = Field(True, description="zero γ of dead channels after each epoch")
    clip_at_zero: bool = Field(True, description="truncated L1: a γ that crosses 0 stops at 0")


@register_optimizer
class MorphNet(Optimizer):
    name = "morphnet"
    Settings = MorphNetSettings
    needs_data = True
    summary = "MACs-weighted L1 on BN gammas per width group, then uniform expansion"

    def __init__(self) -> None:
        self._data: Any = None

    def check(self, ctx: SearchContext, settings: BaseModel) -> None:
        """Load the data now: a missing dataset fails before any training."""
        from wtc.optimizers.training import load_data

        self._data = load_data(ctx)

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:
        from wtc.optimizers.training import load_data

        assert isinstance(settings, MorphNetSettings)
        data = self._data if self._data is not None else load_data(ctx)
        return structure_learning(ctx, settings, data)

    @staticmethod
    def lam(ctx: SearchContext, s: MorphNetSettings) -> float:
        return s.lam if s.lam is not None else s.strength / count_macs(ctx.graph)


def expand(ctx: SearchContext, alive: dict[str, int], current: dict[str, int]
           ) -> tuple[dict[str, int], float, dict[str, float]]:
    """Alive counts → direction → uniform expansion to the target: (channels, α, direction)."""
    graph = ctx.graph
    div = graph.spec.divisor
    direction: dict[str, float] = {g: float(max(n, div)) for g, n in alive.items()}
    gated_now = sum(current[g] for g in alive)
    shrink = (sum(alive.values()) / gated_now) if gated_now else 1.0
    for g in graph.free_groups:
        if g not in direction:  # no BN to read: follow the mean shrink of the others
            direction[g] = max(float(div), current[g] * shrink)
    groups, alpha = scale_to_macs(graph, direction, ctx.target_macs)
    return groups, alpha, direction


def details(rounds: list[dict[str, Any]], lam: float) -> dict[str, Any]:
    last = rounds[-1]
    return {"lambda": lam, "alive": last["alive"], "alpha": last["alpha"],
            "alive_macs": last["alive_macs"], "rounds": rounds}


def structure_learning(ctx: SearchContext, s: MorphNetSettings, data: Any) -> Outcome:
    """The rounds: train with λ·G (`GammaHooks`), read the alive channels, expand to the
    target; each round from scratch at the previous round's widths (torch side)."""
    from wtc.optimizers import training as tr
    from wtc.optimizers.gamma import GammaHooks, GammaRegularizer, alive_macs

    graph = ctx.graph
    cfg = tr.train_config(ctx, ctx.epochs or s.epochs, lr=s.lr, momentum=s.momentum,
                          weight_decay=s.weight_decay, schedule="constant")
    lam = MorphNet.lam(ctx, s)
    current = {g: graph.groups[g].base for g in graph.free_groups}
    history: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    train_macs = 0
    for r in range(s.rounds):
        tr.seed_everything(ctx.seed + 1000 * r)
        model = tr.build_model(graph, current)
        if r == 0 and ctx.init is not None:
            ctx.init(model)
        reg = GammaRegularizer(graph, model, s.threshold)
        hooks = GammaHooks(reg, lam, zero_dead=s.zero_dead, clip_at_zero=s.clip_at_zero,
                           cut_macs=lambda alive, w=current: alive_macs(graph, alive, w))
        run = ctx.run_dir / f"round{r}" if ctx.run_dir is not None else None
        res = tr.fit_or_resume(ctx, model, data, cfg, hooks, run=run,
                               meta={"spec_hash": graph.spec_hash, "widths": current},
                               forward_macs=tr.forward_macs(graph, current, model, data))
        train_macs += int(res.train_macs or 0)
        history.extend({"round": r, **row} for row in res.history)
        alive = reg.alive()
        groups, alpha, _ = expand(ctx, alive, current)
        rounds.append({"round": r, "alive": alive, "alpha": alpha,
                       "alive_macs": alive_macs(graph, alive, current),
                       "top1": res.summary.get("top1"), "widths": groups})
        current = groups
    return Outcome(groups=current, train_macs=train_macs, history=history,
                   details=details(rounds, lam))
