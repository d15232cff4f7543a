"""`fit`: the one training loop every caller reuses (wtc train, the width optimizers).

fit owns the runtime: device, precision (autocast) and channels_last, DDP, SGD
with a per-step schedule, checkpoints every epoch that resume bit-exactly (weights, optimizer,
scheduler, every rank's RNG streams, the hooks' state), metrics as JSON lines, progress. What
a method changes goes through `TrainHooks` (hooks.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from wtc.atomic import atomic_write_text, make_folders
from wtc.data import DataBundle
from wtc.errors import CheckpointError, ConfigError
from wtc.graph.cost import training_macs
from wtc.trainer.compiled import compile_model, resolve_compile
from wtc.trainer.config import TrainConfig, TrainResult
from wtc.trainer.distributed import (
    dist_info,
    gather_rng,
    init_distributed,
    leave_distributed,
    resolve_device,
    sync_buffers,
)
from wtc.trainer.evaluation import torch_forward_macs
from wtc.trainer.hooks import TrainHooks
from wtc.trainer.precision import has_grouped_conv, resolve_runtime
from wtc.trainer.progress import Progress
from wtc.trainer.state import (
    CHECKPOINT,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)


def param_groups(params: nn.Module | Iterable[nn.Parameter], weight_decay: float
                 ) -> list[dict[str, Any]]:
    """Weight decay on weights only: BN parameters and biases (all ≤1-D tensors) get none.
    `params`: a model (its parameters that require grad) or the parameters to train."""
    if isinstance(params, nn.Module):
        params = [p for p in params.parameters() if p.requires_grad]
    decay, no_decay = [], []
    for p in params:
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def fused_sgd(params: Iterable[nn.Parameter], device: torch.device) -> dict[str, bool]:
    """SGD's fused kernel (one update for every tensor, no per-parameter Python loop) where
    torch has it: on CPU and CUDA for floating-point parameters. On a tiny proxy the per-tensor
    loop was ~2% of a training step (`benchmarks/bench_proxy_throughput.py`); on CPU the fused
    update is bitwise the loop's (tests/test_compile.py), so no result changes."""
    ok = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return {"fused": True} if ok else {}


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Per-step multiplier: linear warm-up, then cosine / linear decay to 0, or constant."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    t = (step - warmup) / (total - warmup)
    t = min(max(t, 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0 - t


def fit(model: nn.Module, data: DataBundle, cfg: TrainConfig, *,
        hooks: TrainHooks | None = None,
        evaluate_test: bool = True,
        forward_macs: int | None = None,
        progress: str = "none",
        out_dir: str | Path | None = None,
        resume: bool | str | Path = False,
        meta: dict[str, Any] | None = None,
        max_epochs: int | None = None) -> TrainResult:
    """Train `model` on `data` for `cfg.epochs`; the loop every optimizer reuses.

    hooks: what a method customises (parameters, the step, after-step, end of epoch,
    evaluation, resumable state); default plain supervised training.
    evaluate_test: False never touches data.test (searches must not read the test set); the
    epoch row then has val metrics only (when data.val exists).
    forward_macs: per-image forward MACs (measured with torch's flop counter if None);
    training MACs = 3 x forward_macs x images processed. out_dir (default cfg.out) receives
    checkpoint.pt, metrics.jsonl and summary.json on rank 0; None writes nothing.
    resume: True continues from out_dir/checkpoint.pt, a path from that file.
    max_epochs stops after that many epochs in total (a time slice; resume later).
    progress: "auto" | "rich" | "plain" | "none" (the library prints nothing by default).
    """
    if hooks is None:
        hooks = TrainHooks()
    device = resolve_device(cfg.device)
    created_pg = init_distributed(device)
    rank, world = dist_info()
    loop: _Loop | None = None
    finished = False
    try:
        loop = _Loop(model, data, cfg, hooks, device, rank, world, evaluate_test, meta or {})
        result = loop.run(forward_macs, progress, out_dir, resume, max_epochs)
        finished = True
        return result
    finally:
        if created_pg:
            if loop is not None:
                loop.model = loop.raw  # the DDP wrapper (and its hold on the group) goes first
            del loop
            leave_distributed(finished)


@dataclass
class _Epoch:
    """Running sums of one epoch's training batches."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    seen: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _Loop:
    """One fit: the runtime, optimizer and schedule, and the epoch loop over them."""

    def __init__(self, model: nn.Module, data: DataBundle, cfg: TrainConfig, hooks: TrainHooks,
                 device: torch.device, rank: int, world: int, evaluate_test: bool,
                 meta: dict[str, Any]) -> None:
        self.data, self.cfg, self.hooks, self.device = data, cfg, hooks, device
        self.rank, self.world, self.main = rank, world, rank == 0
        self.evaluate_test, self.meta = evaluate_test, meta
        if device.type != "cpu":  # CPU threads: the process's entry point sets them
            torch.cuda.set_device(device)
        self.runtime = resolve_runtime(cfg.precision, cfg.channels_last, device,
                                       grouped_conv=has_grouped_conv(model))
        hooks.runtime = self.runtime
        self.compiled = resolve_compile(cfg.compile, device, static_shapes=hooks.static_shapes)
        model.to(device)
        if self.runtime.channels_last:
            model.to(memory_format=torch.channels_last)
        self.raw = self.model = model
        self.params = hooks.parameters(model)
        self.opt = torch.optim.SGD(param_groups(self.params, cfg.weight_decay), lr=cfg.lr,
                                   momentum=cfg.momentum,
                                   nesterov=cfg.nesterov and cfg.momentum > 0,
                                   **fused_sgd(self.params, device))
        self.steps_per_epoch = len(data.train)
        self.total = total = self.steps_per_epoch * cfg.epochs
        warmup = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, total, warmup, cfg.schedule))
        self.scaler = (torch.amp.GradScaler("cuda")
                       if self.runtime.precision == "fp16" else None)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.start_epoch, self.images_seen = 0, 0
        self.history: list[dict[str, Any]] = []

    def run(self, forward_macs: int | None, progress: str, out_dir: str | Path | None,
            resume: bool | str | Path, max_epochs: int | None) -> TrainResult:
        cfg, data, raw = self.cfg, self.data, self.raw
        out = Path(out_dir) if out_dir is not None else (Path(cfg.out) if cfg.out else None)
        seed_everything(cfg.data.seed + self.rank)
        if resume:
            ckpt_path = Path(resume) if not isinstance(resume, bool) else (
                out / CHECKPOINT if out else None)
            if ckpt_path is None:
                raise ConfigError("resume needs an output directory holding checkpoint.pt")
            self.restore(ckpt_path)
        if self.world > 1:
            self.model = nn.parallel.DistributedDataParallel(
                raw, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.compiled:  # the training forward only: evaluation runs the eager `raw`
            self.model = compile_model(self.model)
        if forward_macs is None:
            if self.evaluate_test:
                x0, _ = next(iter(data.test))
            else:  # the same count from a blank image of the data's shape
                x0 = torch.zeros(1, data.channels, data.resolution, data.resolution)
            forward_macs = torch_forward_macs(raw, x0.to(self.device))
        self.forward_macs = forward_macs
        end_epoch = min(cfg.epochs, max_epochs) if max_epochs else cfg.epochs
        if out is not None and self.main:
            make_folders(out)  # WriteError naming it (no permission, no space)
        self.t_start = time.perf_counter()
        self.seconds_before = (float(self.history[-1]["seconds_total"]) if self.history
                               else 0.0)
        with Progress(progress, self.main) as bar:
            for epoch in range(self.start_epoch, end_epoch):
                self.epoch(epoch, bar, out)
        return self.result(out)

    def restore(self, ckpt_path: Path) -> None:
        """Weights, optimizer, schedule, scaler, history, RNG streams and hooks state."""
        ck = load_checkpoint(ckpt_path, self.raw, spec_hash=self.meta.get("spec_hash"),
                             widths=self.meta.get("widths"))
        try:
            self.opt.load_state_dict(ck["optimizer"])
            self.sched.load_state_dict(ck["scheduler"])
            if self.scaler is not None and ck.get("scaler"):
                self.scaler.load_state_dict(ck["scaler"])
            self.start_epoch, self.images_seen = int(ck["epoch"]), int(ck["images_seen"])
            self.history = list(ck.get("history", []))
            rng = ck["rng"]
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt_path} lacks training state to resume from ({e}); "
                                  "it may be a weights-only checkpoint") from None
        if ck.get("hooks"):
            self.hooks.load_state_dict(ck["hooks"])
        if int(ck.get("world_size", self.world)) == self.world and self.rank < len(rng):
            set_rng_state(rng[self.rank])
        if self.start_epoch >= self.cfg.epochs:
            raise CheckpointError(f"{ckpt_path} already finished {self.start_epoch} epochs; "
                                  f"raise --epochs above {self.start_epoch} to train further")

    def epoch(self, epoch: int, bar: Progress, out: Path | None) -> None:
        """Train one epoch, then evaluate, checkpoint and report it."""
        t0 = time.perf_counter()
        sums = self.train_epoch(epoch, bar)
        per_rank = getattr(self.data.train, "num_samples", None)
        self.images_seen += (per_rank if per_rank is not None else sums.seen) * self.world
        sync_buffers(self.raw, self.world)
        row = self.epoch_row(epoch, sums)
        row.update(images_seen=self.images_seen,
                   train_macs=training_macs(self.forward_macs, self.images_seen),
                   seconds=time.perf_counter() - t0,
                   seconds_total=self.seconds_before + time.perf_counter() - self.t_start)
        row.update(sums.extra)
        self.history.append(row)
        rngs = gather_rng(self.world)
        if self.main and out is not None:
            hooks_state = self.hooks.state_dict()
            save_checkpoint(out / CHECKPOINT, self.raw, optimizer=self.opt.state_dict(),
                            scheduler=self.sched.state_dict(),
                            scaler=self.scaler.state_dict() if self.scaler else None,
                            epoch=epoch + 1, images_seen=self.images_seen,
                            history=self.history, rng=rngs, world_size=self.world,
                            config=self.cfg.flat(), forward_macs=self.forward_macs,
                            **({"hooks": hooks_state} if hooks_state else {}), **self.meta)
            atomic_write_text(out / "metrics.jsonl",
                              "".join(json.dumps(r) + "\n" for r in self.history))
        bar.epoch_end(row)
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def train_epoch(self, epoch: int, bar: Progress) -> _Epoch:
        model, device, hooks = self.model, self.device, self.hooks
        model.train()
        self.data.train.set_epoch(epoch)
        bar.epoch_start(epoch, self.cfg.epochs, self.steps_per_epoch)
        sums = _Epoch(torch.zeros((), device=device),
                      torch.zeros((), dtype=torch.int64, device=device))
        for i, (x, y) in enumerate(self.data.train):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            x = self.runtime.prepare_input(x)
            self.opt.zero_grad(set_to_none=True)
            with self.runtime.autocast(device):
                loss, logits = hooks.step(model, x, y, self.criterion, self.backward)
            self.optimizer_step()
            hooks.after_step(self.raw, epoch * self.steps_per_epoch + i, self.total)
            bs = len(y)
            sums.loss_sum += loss.detach() * bs
            sums.correct += (logits.detach().argmax(1) == y).sum()
            sums.seen += bs
            if bar.mode == "rich" and (i % 10 == 0 or i == self.steps_per_epoch - 1):
                bar.step(f"loss {sums.loss_sum.item() / sums.seen:.4f}")
            else:
                bar.step()
        return sums

    def backward(self, loss: torch.Tensor) -> None:
        """The backward pass a hook's step calls: outside autocast, through the AMP scaler."""
        with (torch.autocast(self.device.type, enabled=False) if self.runtime.dtype
              else contextlib.nullcontext()):
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()

    def optimizer_step(self) -> None:
        clip = self.cfg.grad_clip
        if self.scaler is not None:
            if clip:
                self.scaler.unscale_(self.opt)
                nn.utils.clip_grad_norm_(self.params, clip)
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            if clip:
                nn.utils.clip_grad_norm_(self.params, clip)
            self.opt.step()
        self.sched.step()

    def epoch_row(self, epoch: int, sums: _Epoch) -> dict[str, Any]:
        """Train metrics, the hooks' epoch-end metrics, then val (and test) evaluation."""
        cfg, seen = self.cfg, max(sums.seen, 1)
        row: dict[str, Any] = {
            "epoch": epoch, "epochs": cfg.epochs,
            "train_loss": sums.loss_sum.item() / seen,
            "train_top1": sums.correct.item() / seen,
            "lr": self.opt.param_groups[0]["lr"],
        }
        sums.extra = dict(self.hooks.end_epoch(self.raw, epoch) or {})
        if self.main:
            if self.data.val is not None:
                v = self.hooks.evaluate(self.raw, self.data.val, self.device)
                row.update(val_top1=v["top1"], val_loss=v["loss"])
            if self.evaluate_test and ((epoch + 1) % cfg.eval_every == 0
                                       or epoch + 1 == cfg.epochs):
                t = self.hooks.evaluate(self.raw, self.data.test, self.device)
                row.update(top1=t["top1"], loss=t["loss"])
        return row

    def result(self, out: Path | None) -> TrainResult:
        data, last = self.data, (self.history[-1] if self.history else {})
        summary = {
            "epochs": len(self.history), "epochs_planned": self.cfg.epochs,
            "top1": last.get("top1"), "loss": last.get("loss"),
            "val_top1": last.get("val_top1"), "train_loss": last.get("train_loss"),
            "forward_macs": self.forward_macs, "images_seen": self.images_seen,
            "train_macs": training_macs(self.forward_macs, self.images_seen),
            "seconds": last.get("seconds_total"),
            "device": str(self.device), **self.runtime.to_json(), "compile": self.compiled,
            "world_size": self.world, "data": data.name,
            "train_size": data.train_size, "num_classes": data.num_classes,
            "resolution": data.resolution, **self.meta,
        }
        if self.main and out is not None:
            atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return TrainResult(model=self.raw, history=self.history, summary=summary, out_dir=out,
                           checkpoint=out / CHECKPOINT if out is not None else None)

