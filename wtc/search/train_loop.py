"""MorphNet's structure learning on top of the shared trainer (`wtc.train.fit`), torch side."""

from __future__ import annotations

from typing import Any

import torch

from wtc.build import build_model
from wtc.data import make_data
from wtc.graph import count_macs
from wtc.search.base import Outcome, SearchContext
from wtc.search.gamma import GammaRegularizer
from wtc.search.morphnet import MorphNet, MorphNetSettings, details, expand
from wtc.train import (
    CHECKPOINT,
    TrainConfig,
    TrainResult,
    fit,
    load_checkpoint,
    seed_everything,
    torch_forward_macs,
)


def load_data(ctx: SearchContext) -> Any:
    """The DataBundle for the search (raises DataError: done before any training)."""
    s = ctx.graph.spec
    return make_data(ctx.data, channels=s.input.channels,
                     resolution=ctx.data.resolution or s.input.resolution, num_classes=s.classes)


def train_config(ctx: SearchContext, s: MorphNetSettings) -> TrainConfig:
    return TrainConfig(**ctx.data.model_dump(), epochs=ctx.epochs or s.epochs, lr=s.lr,
                       momentum=s.momentum, weight_decay=s.weight_decay, schedule="constant",
                       device=ctx.device, threads=ctx.threads, out=None,
                       eval_every=ctx.epochs or s.epochs)


def structure_learning(ctx: SearchContext, s: MorphNetSettings, data: Any) -> Outcome:
    graph = ctx.graph
    cfg = train_config(ctx, s)
    lam = MorphNet.lam(ctx, s)
    current = {g: graph.groups[g].base for g in graph.free_groups}
    history: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    train_macs = 0
    for r in range(s.rounds):
        seed_everything(ctx.seed + 1000 * r)
        model = build_model(graph, current)
        if r == 0 and ctx.init is not None:
            ctx.init(model)
        reg = GammaRegularizer(graph, model, s.threshold)
        if data.resolution == graph.spec.input.resolution:
            fwd = count_macs(graph, current)
        else:  # MACs scale with the pixel count
            fwd = torch_forward_macs(
                model, torch.zeros(1, data.channels, data.resolution, data.resolution))
        per_epoch: list[dict[str, Any]] = []

        def on_epoch_end(m: Any, epoch: int, reg: GammaRegularizer = reg,
                         per_epoch: list[dict[str, Any]] = per_epoch,
                         widths: dict[str, int] = current) -> None:
            with torch.no_grad():
                g_value = float(reg())
            alive = reg.alive()
            dead = reg.zero_dead() if s.zero_dead else None
            per_epoch.append({"alive": sum(alive.values()), "regularizer": lam * g_value,
                              "dead_zeroed": dead,
                              "alive_macs": _alive_macs(graph, alive, widths)})

        hook = None
        if s.clip_at_zero:
            def pre_forward(m: Any, args: Any, reg: GammaRegularizer = reg) -> None:
                if m.training:
                    reg.clip_at_zero()

            hook = model.register_forward_pre_hook(pre_forward)
        run = ctx.run_dir / f"round{r}" if ctx.run_dir is not None else None
        meta = {"spec_hash": graph.spec_hash, "widths": current}
        res = _finished(run, model, cfg, meta) if ctx.resume else None
        if res is None:
            resume = bool(ctx.resume and run is not None and (run / CHECKPOINT).is_file())
            res = fit(model, data, cfg, extra_loss=lambda m, reg=reg: lam * reg(m),
                      on_epoch_end=on_epoch_end, forward_macs=fwd, progress=ctx.progress,
                      out_dir=run, resume=resume, meta=meta)
        if hook is not None:
            hook.remove()
        train_macs += int(res.train_macs or 0)
        # epochs trained before a resume have no regularizer statistics: align from the end
        extras = [{}] * (len(res.history) - len(per_epoch)) + per_epoch
        for row, extra in zip(res.history, extras, strict=True):
            history.append({"round": r, **row, **extra})
        alive = reg.alive()
        groups, alpha, _ = expand(ctx, alive, current)
        rounds.append({"round": r, "alive": alive, "alpha": alpha,
                       "alive_macs": _alive_macs(graph, alive, current),
                       "top1": res.summary.get("top1"), "widths": groups})
        current = groups
    return Outcome(groups=current, train_macs=train_macs, history=history,
                   details=details(rounds, lam))


def _finished(run: Any, model: Any, cfg: TrainConfig, meta: dict[str, Any]
              ) -> TrainResult | None:
    """A round an interrupted search had already finished: its weights loaded into `model`
    and its record, instead of training it again (None when it has to be trained)."""
    if run is None or not (run / CHECKPOINT).is_file():
        return None
    ck = load_checkpoint(run / CHECKPOINT, model, spec_hash=meta["spec_hash"],
                         widths=meta["widths"])
    if int(ck.get("epoch", 0)) < cfg.epochs:
        return None
    history = list(ck.get("history", []))
    summary = {"top1": history[-1].get("top1") if history else None,
               "train_macs": 3 * int(ck["forward_macs"]) * int(ck["images_seen"])}
    return TrainResult(model=model, history=history, summary=summary, out_dir=run)


def _alive_macs(graph: Any, alive: dict[str, int], current: dict[str, int]) -> int:
    """MACs of the network cut to its alive channels (groups without BN as they are; at least
    one channel per group)."""
    return count_macs(graph, {g: max(1, alive.get(g, current[g])) for g in current})
