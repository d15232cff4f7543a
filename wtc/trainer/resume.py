"""Fit or resume: the one way a caller with a checkpoint folder trains (the optimizers' rounds,
the experiment's final trainings). A fit the folder's checkpoint records as finished is read
back instead of trained again, an unfinished one continues from its checkpoint (bit-exactly:
`fit` restores weights, optimizer, schedule and RNG streams), a new one trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from wtc.data import DataBundle
from wtc.graph import training_macs
from wtc.trainer.config import TrainConfig, TrainResult
from wtc.trainer.distributed import resolve_device
from wtc.trainer.hooks import TrainHooks
from wtc.trainer.loop import fit
from wtc.trainer.precision import resolve_runtime
from wtc.trainer.state import CHECKPOINT, load_checkpoint


def finished_fit(run: Path | None, model: nn.Module, cfg: TrainConfig, meta: dict[str, Any],
                 hooks: TrainHooks | None = None) -> TrainResult | None:
    """A fit an interrupted run had already finished: its weights loaded into `model` (and
    its hooks' state into `hooks`) and its record, instead of training it again (None when it
    has to be trained)."""
    if run is None or not (run / CHECKPOINT).is_file():
        return None
    ck = load_checkpoint(run / CHECKPOINT, model, spec_hash=meta["spec_hash"],
                         widths=meta["widths"])
    if int(ck.get("epoch", 0)) < cfg.epochs:
        return None
    if resolve_runtime(cfg.precision, cfg.channels_last, resolve_device(cfg.device)
                       ).channels_last:  # the layout `fit` leaves: later forwards match
        model.to(memory_format=torch.channels_last)
    if hooks is not None and ck.get("hooks"):
        hooks.load_state_dict(ck["hooks"])
    history = list(ck.get("history", []))
    summary = {"top1": history[-1].get("top1") if history else None,
               "train_macs": training_macs(int(ck["forward_macs"]), int(ck["images_seen"])),
               "images_seen": int(ck["images_seen"])}
    return TrainResult(model=model, history=history, summary=summary, out_dir=run)


def fit_or_resume(model: nn.Module, data: DataBundle, cfg: TrainConfig,
                  hooks: TrainHooks | None = None, *, run: Path | None, meta: dict[str, Any],
                  resume: bool, progress: str = "none", forward_macs: int | None = None,
                  **fit_kwargs: Any) -> TrainResult:
    """`fit` with checkpoints in `run` (None: none). With `resume`, a finished fit is read back
    (`finished_fit`) and an unfinished one continues from its checkpoint."""
    res = finished_fit(run, model, cfg, meta, hooks) if resume else None
    if res is None:
        again = bool(resume and run is not None and (run / CHECKPOINT).is_file())
        res = fit(model, data, cfg, hooks=hooks, forward_macs=forward_macs, progress=progress,
                  out_dir=run, resume=again, meta=meta, **fit_kwargs)
    return res
