"""MorphNet (Gordon et al., CVPR 2018): shrink, then expand.

1. Train with task loss + λ·G, G the MACs-weighted L1 on BN γ per width group (gamma.py),
   at a constant learning rate (structure learning: no decay).
2. Read the alive channels per group (|γ| > threshold in any member).
3. Expand uniformly: one α so that α · alive meets the MACs target (`scale_to_macs`, rounded to
   the divisor); a group with no alive channel keeps one divisor's worth.
4. Optionally repeat from the expanded widths (`rounds`), each round trained from scratch.
λ = `lam` if given, else `strength` / (MACs of the base network), the README's "around
1/initial cost" rule. Groups without BN (nothing to read) follow the mean shrink of the others.

MACs-target mode (`ladder` > 1): a short log-spaced ladder of λ (`ladder` rungs, neighbours a
factor `ladder_factor` apart, centred on the λ above). Each rung's expanded widths are trained
from scratch for `score_epochs` and scored on the held-out split of the TRAINING set after BN
recalibration; the best-scoring rung is kept. Every rung's training and scoring counts in the
search's cost. The test set is never read: the search-time accuracy reported (`val_top1`) is
the held-out top-1 after BN recalibration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from wtc.graph import StageGraph, count_macs, training_macs
from wtc.limits import MAX_EPOCHS
from wtc.optimizers.base import Optimizer, Outcome, SearchContext, register_optimizer
from wtc.widths import scale_to_macs

if TYPE_CHECKING:
    from wtc.data import DataBundle


class MorphNetSettings(BaseModel):
    """MorphNet hyper-parameters (structure learning with a constant learning rate)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    epochs: int = Field(2, ge=1, le=MAX_EPOCHS, description="structure-learning epochs per round")
    strength: float = Field(5.0, gt=0.0, description="λ = strength / base MACs")
    lam: float | None = Field(None, gt=0.0, description="absolute λ (overrides strength)")
    threshold: float = Field(1e-2, gt=0.0, description="alive if |γ| > threshold")
    lr: float = Field(0.05, gt=0.0, description="constant learning rate (no decay)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0, description="on conv/linear weights only")
    rounds: int = Field(1, ge=1, le=10, description="shrink/expand repetitions")
    zero_dead: bool = Field(True, description="zero γ of dead channels after each epoch")
    clip_at_zero: bool = Field(True, description="truncated L1: a γ that crosses 0 stops at 0")
    ladder: int = Field(1, ge=1, le=9, description="λ rungs tried (1: the one λ above)")
    ladder_factor: float = Field(4.0, gt=1.0, description="ratio of neighbouring λ rungs")
    score_epochs: int = Field(1, ge=1, le=MAX_EPOCHS,
                              description="training of each rung's widths to score")
    score_lr: float = Field(0.1, gt=0.0, description="learning rate of that training (cosine)")
    recal_batches: int = Field(20, ge=1, description="training batches for BN recalibration")


@register_optimizer
class MorphNet(Optimizer):
    name = "morphnet"
    Settings = MorphNetSettings
    needs_data = True
    summary = "MACs-weighted L1 on BN gammas per width group, then uniform expansion"

    def check(self, ctx: SearchContext, settings: BaseModel) -> None:
        """The λ ladder needs a held-out split (the data itself is read by `run`, first: a
        missing dataset still fails before any training)."""
        from wtc.errors import ConfigError

        assert isinstance(settings, MorphNetSettings)
        if settings.ladder > 1 and not ctx.data.val_split:
            raise ConfigError("morphnet's λ ladder scores each rung on a held-out split of the "
                              "training set: give val_split (e.g. 0.1) in the data settings")

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:
        from wtc.optimizers.training import load_data

        assert isinstance(settings, MorphNetSettings)
        data = load_data(ctx)
        if settings.ladder == 1:
            return structure_learning(ctx, settings, data)
        return ladder(ctx, settings, data)

    @staticmethod
    def lam(ctx: SearchContext, s: MorphNetSettings) -> float:
        return s.lam if s.lam is not None else s.strength / count_macs(ctx.graph)

    @staticmethod
    def lams(ctx: SearchContext, s: MorphNetSettings) -> list[float]:
        """The λ ladder: `ladder` values, log-spaced by `ladder_factor`, centred on λ."""
        lam = MorphNet.lam(ctx, s)
        mid = (s.ladder - 1) / 2
        return [lam * s.ladder_factor ** (i - mid) for i in range(s.ladder)]

    @staticmethod
    def held_out_top1(details: Mapping[str, Any]) -> float | None:
        """The chosen λ rung's held-out top-1 (`val_top1`)."""
        return details.get("val_top1")

    @staticmethod
    def estimate_train_macs(graph: StageGraph, s: MorphNetSettings, *, images: float,
                            target_macs: int, val_images: float = 0.0) -> int:
        """Projected cost (dry runs): structure learning at the base widths (later rounds at
        about the target), and per ladder rung the scoring training at the target plus the
        forward passes of BN recalibration and the held-out evaluation."""
        base = count_macs(graph)
        learn = training_macs(base + (s.rounds - 1) * target_macs, images) * s.epochs
        if s.ladder == 1:
            return int(learn)
        score = training_macs(target_macs, images) * s.score_epochs + target_macs * val_images
        return int(s.ladder * (learn + score))


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
    groups, alpha = scale_to_macs(graph, direction, ctx.target_macs, cost=ctx.cost)
    return groups, alpha, direction


def details(rounds: list[dict[str, Any]], lam: float) -> dict[str, Any]:
    last = rounds[-1]
    return {"lambda": lam, "alive": last["alive"], "alpha": last["alpha"],
            "alive_macs": last["alive_macs"], "val_top1": last["val_top1"], "rounds": rounds}


def ladder(ctx: SearchContext, s: MorphNetSettings, data: DataBundle) -> Outcome:
    """Structure learning at each λ of the ladder; each rung's expanded widths trained for
    `score_epochs` and scored on the held-out split after BN recalibration; the best kept."""
    from wtc.optimizers import training as tr

    rungs: list[dict[str, Any]] = []
    best: tuple[float, int, Outcome] | None = None
    total = 0
    history: list[dict[str, Any]] = []
    for i, lam in enumerate(MorphNet.lams(ctx, s)):
        out = structure_learning(ctx, s.model_copy(update={"lam": lam}), data,
                                 run_sub=f"rung{i}")
        cfg = tr.train_config(ctx, s.score_epochs, lr=s.score_lr, momentum=s.momentum,
                              weight_decay=s.weight_decay, schedule="cosine")
        score = tr.score_widths(ctx, out.groups, data, cfg, seed=ctx.seed + 7,
                                recal_batches=s.recal_batches)
        cost = out.train_macs + score["train_macs"]
        total += cost
        history.extend({"rung": i, **row} for row in out.history)
        rungs.append({"rung": i, "lambda": lam, "widths": out.groups,
                      "alive_macs": out.details["alive_macs"], "val_top1": score["top1"],
                      "search_val_top1": out.details.get("val_top1"), "train_macs": cost})
        if best is None or score["top1"] > best[0]:
            best = (score["top1"], i, out)
    assert best is not None
    top1, i, out = best
    details = {**out.details, "val_top1": top1, "rung": i, "ladder": rungs}
    return Outcome(groups=out.groups, train_macs=total, history=history, details=details)


def structure_learning(ctx: SearchContext, s: MorphNetSettings, data: DataBundle,
                       run_sub: str | None = None) -> Outcome:
    """The rounds: train with λ·G (`GammaHooks`), read the alive channels, expand to the
    target; each round from scratch at the previous round's widths (torch side). The final
    model's held-out top-1 after BN recalibration is reported as `val_top1` (the test set is
    never read)."""
    from wtc.optimizers import training as tr
    from wtc.optimizers.gamma import GammaHooks, GammaRegularizer, alive_macs

    graph = ctx.graph
    cfg = tr.train_config(ctx, s.epochs, lr=s.lr, momentum=s.momentum,
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
        reg = GammaRegularizer(graph, model, s.threshold,
                               terms=None if ctx.cost is None else ctx.cost.terms(graph))
        hooks = GammaHooks(reg, lam, zero_dead=s.zero_dead, clip_at_zero=s.clip_at_zero,
                           cut_macs=lambda alive, w=current: alive_macs(graph, alive, w))
        run = None
        if ctx.run_dir is not None:
            run = ctx.run_dir / run_sub / f"round{r}" if run_sub else ctx.run_dir / f"round{r}"
        fwd = tr.forward_macs(graph, current, model, data)
        res = tr.fit_or_resume(ctx, model, data, cfg, hooks, run=run,
                               meta={"spec_hash": graph.spec_hash, "widths": current},
                               forward_macs=fwd, evaluate_test=False)
        train_macs += int(res.train_macs or 0)
        held = tr.heldout_top1(model, data, ctx, recal_batches=s.recal_batches)
        train_macs += fwd * (held["images"] + tr.monitor_images(data, len(res.history)))
        history.extend({"round": r, **row} for row in res.history)
        alive = reg.alive()
        groups, alpha, _ = expand(ctx, alive, current)
        rounds.append({"round": r, "alive": alive, "alpha": alpha,
                       "alive_macs": alive_macs(graph, alive, current),
                       "val_top1": held["top1"], "widths": groups})
        current = groups
    return Outcome(groups=current, train_macs=train_macs, history=history,
                   details=details(rounds, lam))
