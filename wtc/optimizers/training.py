"""Training helpers shared by the optimizers that train a network; they know no optimizer.

An optimizer builds its model and `TrainHooks`, then calls `fit_or_resume`: a round an
interrupted search had finished is read back from its checkpoint instead of being trained
again, an unfinished one continues from its checkpoint, a new one trains. torch side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from wtc.data import DataBundle, make_data_for
from wtc.nn import build_model
from wtc.nn.bn import recalibrate_bn
from wtc.optimizers.base import SearchContext
from wtc.trainer import (
    Runtime,
    TrainConfig,
    TrainHooks,
    TrainResult,
    evaluate,
    fit,
    forward_macs,
    resolve_device,
    resolve_runtime,
    seed_everything,
)
from wtc.trainer import fit_or_resume as trainer_fit_or_resume

__all__ = ["build_model", "fit_or_resume", "forward_macs", "heldout_top1",
           "load_data", "monitor_images", "runtime", "score_widths", "seed_everything",
           "train_config"]


def load_data(ctx: SearchContext) -> DataBundle:
    """The DataBundle for the search (raises DataError: done before any training)."""
    return make_data_for(ctx.graph.spec, ctx.data)


def train_config(ctx: SearchContext, epochs: int, **optim: Any) -> TrainConfig:
    """A TrainConfig for a search: the search's data, device and threads, `epochs` and the
    method's optimizer options (lr, momentum, weight_decay, schedule, ...); writes nothing
    itself (`out=None`) and evaluates the test set only after the last epoch."""
    return TrainConfig(data=ctx.data, epochs=epochs, device=ctx.device,
                       threads=ctx.threads, out=None, eval_every=epochs,
                       precision=ctx.precision, channels_last=ctx.channels_last, **optim)


def runtime(ctx: SearchContext) -> Runtime:
    """The precision and memory format of the search's forwards outside `fit` (held-out
    scoring, BN recalibration)."""
    return resolve_runtime(ctx.precision, ctx.channels_last, resolve_device(ctx.device))


def fit_or_resume(ctx: SearchContext, model: nn.Module, data: DataBundle, cfg: TrainConfig,
                  hooks: TrainHooks, *, run: Path | None, meta: dict[str, Any],
                  forward_macs: int | None = None, **fit_kwargs: Any) -> TrainResult:
    """`wtc.trainer.fit_or_resume` for a search: resumes when the search does (`ctx.resume`),
    shows the search's progress."""
    return trainer_fit_or_resume(model, data, cfg, hooks, run=run, meta=meta,
                                 resume=ctx.resume, progress=ctx.progress,
                                 forward_macs=forward_macs, **fit_kwargs)


def heldout_top1(model: nn.Module, data: DataBundle, ctx: SearchContext, *,
                 recal_batches: int = 20) -> dict[str, Any]:
    """Top-1 of `model` on the held-out split of the training set (data.val), after its BN
    statistics are recalibrated on `recal_batches` training batches; {"top1": None} without a
    held-out split. "images" = the images run forward (recalibration + evaluation), for the
    search's cost. The test set is never read."""
    if data.val is None:
        return {"top1": None, "images": 0}
    device, rt = resolve_device(ctx.device), runtime(ctx)
    model.to(device)
    batches = (b for i, b in zip(range(recal_batches), data.train, strict=False))
    seen = recalibrate_bn(model, batches, device, dtype=rt.dtype, channels_last=rt.channels_last)
    v = evaluate(model, data.val, device=device, runtime=rt)
    return {"top1": v["top1"], "images": seen + int(v["n"])}


def score_widths(ctx: SearchContext, groups: dict[str, int], data: DataBundle,
                 cfg: TrainConfig, *, seed: int, recal_batches: int = 20) -> dict[str, Any]:
    """Train `groups` from scratch with `cfg` (no test set), then `heldout_top1`; returns the
    held-out top-1 and the training MACs the whole scoring cost (forward passes included)."""
    seed_everything(seed)
    model = build_model(ctx.graph, groups)
    fwd = forward_macs(ctx.graph, groups, model, data)
    res = fit(model, data, cfg, forward_macs=fwd, evaluate_test=False, progress=ctx.progress)
    held = heldout_top1(res.model, data, ctx, recal_batches=recal_batches)
    images = held["images"] + monitor_images(data, len(res.history))
    return {"top1": held["top1"], "train_macs": int(res.train_macs or 0) + fwd * images}


def monitor_images(data: DataBundle, epochs: int) -> int:
    """Images `fit` ran forward to monitor the held-out split (once per epoch), so a search
    can count them in its cost."""
    if data.val is None:
        return 0
    return int(getattr(data.val, "num_samples", 0)) * epochs
