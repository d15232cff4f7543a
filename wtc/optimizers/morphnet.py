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
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from wtc.graph import StageGraph, count_macs, training_macs
from wtc.limits import MAX_EPOCHS
from wtc.optimizers.base import Optimizer, Outcome, SearchContext, register_optimizer
from wtc.widths import scale_to_macs

if TYPE_CHECKING:
    from wtc.data import DataBundle


_NEARLY_ALL = 0.98  # a rung whose structure keeps this share of the base MACs pruned nothing


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
    multi_target = True
    shared_run = "each λ rung's structure learned once, then expanded and scored per budget"
    summary = "MACs-weighted L1 on BN gammas per width group, then uniform expansion"

    def check(self, ctx: SearchContext, settings: BaseModel) -> None:
        """The λ ladder needs a held-out split (the data itself is read by `run`, first: a
        missing dataset still fails before any training)."""
        from wtc.errors import ConfigError

        assert isinstance(settings, MorphNetSettings)
        if settings.ladder > 1 and not ctx.data.val_split:
            raise ConfigError("morphnet's λ ladder scores each rung on a held-out split of the "
                              "training set: give val_split (e.g. 0.1) in the data settings")
        if settings.rounds > 1 and len(ctx.targets) > 1:
            raise ConfigError("morphnet with rounds > 1 learns each later round at its "
                              "target's widths, so one run serves one target: give one target "
                              "or rounds: 1")

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:
        from wtc.optimizers.training import load_data

        assert isinstance(settings, MorphNetSettings)
        data = load_data(ctx)
        targets = tuple(ctx.targets or (ctx.target_macs,))
        if settings.ladder == 1:
            per_target = structure_learning(ctx, settings, data, targets=targets)
        else:
            per_target = ladder(ctx, settings, data, targets)
        main = per_target[ctx.target_macs]
        if len(targets) == 1:  # the one-target record, as every committed search has it
            return main
        return Outcome(groups=main.groups, train_macs=main.train_macs, history=main.history,
                       details=main.details,
                       per_target={t: o.groups for t, o in per_target.items()},
                       per_target_details={t: o.details for t, o in per_target.items()})

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
    def notes(graph: StageGraph, details: Mapping[str, Any]) -> list[str]:
        """The λ ladder's rungs (how much each pruned, what its expanded widths scored) and a
        warning when the chosen rung is at an end of the ladder: the weakest one pruning
        (almost) nothing returns the uniform expansion of the base widths, the strongest one
        says the best λ may lie beyond the ladder."""
        rungs = details.get("ladder")
        if not rungs:
            return []
        base = count_macs(graph)
        chosen = details.get("rung")
        lines = ["λ ladder (each rung's widths expanded to the target, trained score_epochs, "
                 "scored on the held-out split):"]
        for r in rungs:
            mark = "  <- chosen" if r["rung"] == chosen else ""
            lines.append(f"  rung {r['rung']}: λ {r['lambda']:.3g}, structure kept "
                         f"{r['alive_macs'] / base:.1%} of the base MACs, held-out top-1 "
                         f"{100 * r['val_top1']:.2f}%{mark}")
        if chosen == 0 and rungs[0]["alive_macs"] >= _NEARLY_ALL * base:
            lines.append("the weakest λ won and pruned (almost) nothing: these widths are the "
                         "base widths scaled uniformly. To explore more pruning, raise λ "
                         "(--set strength=...) or widen the ladder (--set ladder_factor=...); "
                         "if stronger rungs keep losing, uniform is this budget's best guess")
        elif len(rungs) > 1 and chosen == len(rungs) - 1:
            lines.append("the strongest λ won: the best λ may lie beyond the ladder; try a "
                         "larger --set strength=...")
        return lines

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
        return int(s.ladder * (learn + _score_macs(s, target_macs, images, val_images)))

    @classmethod
    def estimate_shared_train_macs(cls, graph: StageGraph, settings: Any, *, images: float,
                                   targets: tuple[int, ...], val_images: float = 0.0) -> int:
        """One run for several targets (one round): each rung's structure learning once, and
        its scoring training once per target."""
        s = settings
        learn = training_macs(count_macs(graph), images) * s.epochs
        if s.ladder == 1:
            return int(learn)
        score = sum(_score_macs(s, t, images, val_images) for t in targets)
        return int(s.ladder * (learn + score))


def _score_macs(s: MorphNetSettings, target_macs: int, images: float, val_images: float
                ) -> float:
    """Projected cost of scoring one rung at a target: its training for `score_epochs`, and
    the forward passes of BN recalibration and the held-out evaluation."""
    return training_macs(target_macs, images) * s.score_epochs + target_macs * val_images


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


def ladder(ctx: SearchContext, s: MorphNetSettings, data: DataBundle,
           targets: tuple[int, ...]) -> dict[int, Outcome]:
    """Structure learning at each λ of the ladder (once per rung, whatever the targets); each
    rung's widths expanded to every target, trained for `score_epochs` and scored on the
    held-out split after BN recalibration; per target, its best rung kept."""
    from wtc.optimizers import training as tr

    cfg = tr.train_config(ctx, s.score_epochs, lr=s.score_lr, momentum=s.momentum,
                          weight_decay=s.weight_decay, schedule="cosine")
    rungs: dict[int, list[dict[str, Any]]] = {t: [] for t in targets}
    best: dict[int, tuple[float, int, Outcome]] = {}
    total = 0
    history: list[dict[str, Any]] = []
    for i, lam in enumerate(MorphNet.lams(ctx, s)):
        learned = structure_learning(ctx, s.model_copy(update={"lam": lam}), data,
                                     run_sub=f"rung{i}", targets=targets)
        total += learned[targets[0]].train_macs  # learned once: the same for every target
        history.extend({"rung": i, **row} for row in learned[targets[0]].history)
        scores: dict[tuple[int, ...], dict[str, Any]] = {}  # two targets, the same widths
        for t in targets:
            out = learned[t]
            key = tuple(out.groups[g] for g in sorted(out.groups))
            if key not in scores:
                scores[key] = tr.score_widths(ctx, out.groups, data, cfg, seed=ctx.seed + 7,
                                              recal_batches=s.recal_batches)
                total += scores[key]["train_macs"]
            score = scores[key]
            cost = out.train_macs + score["train_macs"]
            rungs[t].append({"rung": i, "lambda": lam, "widths": out.groups,
                             "alive_macs": out.details["alive_macs"], "val_top1": score["top1"],
                             "search_val_top1": out.details.get("val_top1"),
                             "train_macs": cost})
            if t not in best or score["top1"] > best[t][0]:
                best[t] = (score["top1"], i, out)
    result = {}
    for t in targets:
        top1, i, out = best[t]
        details = {**out.details, "val_top1": top1, "rung": i, "ladder": rungs[t]}
        result[t] = Outcome(groups=out.groups, train_macs=total, history=history,
                            details=details)
    return result


def structure_learning(ctx: SearchContext, s: MorphNetSettings, data: DataBundle,
                       run_sub: str | None = None, targets: tuple[int, ...] | None = None
                       ) -> dict[int, Outcome]:
    """The rounds: train with λ·G (`GammaHooks`), read the alive channels, expand to the
    target; each round from scratch at the previous round's widths (torch side). The final
    model's held-out top-1 after BN recalibration is reported as `val_top1` (the test set is
    never read). With several `targets` (one round: `MorphNet.check`), the structure is learned
    once and only the last expansion differs per target: {target: outcome}."""
    from wtc.optimizers import training as tr
    from wtc.optimizers.gamma import GammaHooks, GammaRegularizer, alive_macs

    targets = targets or (ctx.target_macs,)
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
        learned = {"alive": alive, "alive_macs": alive_macs(graph, alive, current),
                   "val_top1": held["top1"]}
        if r < s.rounds - 1:  # an inner round (one target): expand and learn again
            groups, alpha, _ = expand(ctx, alive, current)
            rounds.append(_round(r, learned, alpha, groups))
            current = groups
    out = {}
    for t in targets:
        groups, alpha, _ = expand(replace(ctx, target_macs=t), alive, current)
        out[t] = Outcome(groups=groups, train_macs=train_macs, history=history,
                         details=details([*rounds, _round(r, learned, alpha, groups)], lam))
    return out


def _round(r: int, learned: dict[str, Any], alpha: float, groups: dict[str, int]
           ) -> dict[str, Any]:
    """One round's record (its keys in the order every ledger has them)."""
    return {"round": r, "alive": learned["alive"], "alpha": alpha,
            "alive_macs": learned["alive_macs"], "val_top1": learned["val_top1"],
            "widths": groups}
