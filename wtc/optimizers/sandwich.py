"""Supernet training and held-out scoring shared by AutoSlim and DMCP (torch side).

`SandwichHooks` plugs the sandwich rule into the shared trainer: per batch, the max width
learns from the labels, every other width from the max width's detached soft output (in-place
distillation), each forward followed by its backward so gradients sum before the one optimizer
step. Under DDP only the last backward of a step synchronises gradients.

`HeldOut` scores widths honestly: BN statistics recalibrated on fixed training batches, top-1
and loss on fixed batches of the held-out split of the training set (never the test set).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wtc.nn.bn import recalibrate_bn
from wtc.nn.slimmable import Supernet
from wtc.optimizers.base import SearchContext
from wtc.optimizers.training import load_data
from wtc.optimizers.widthgrid import WidthGrid
from wtc.trainer import FP32, Runtime, TrainHooks, evaluate


def held_out_data(ctx: SearchContext, share: float) -> Any:
    """The search's data with a stratified share of the training images held out (`val`):
    decisions are scored there, never on the test set. The share is the data's own
    `val_split` when the caller set one (`--val-split`, an experiment plan), else the method's
    `held_out` setting (`share`)."""
    if ctx.data.val_split:
        share = ctx.data.val_split
    data_cfg = ctx.data.model_copy(update={"val_split": share})
    return load_data(replace(ctx, data=data_cfg))


def unwrap(model: nn.Module) -> Any:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def soft_cross_entropy(logits: Tensor, target_probs: Tensor) -> Tensor:
    """KL to the teacher up to a constant: the in-place distillation loss (T = 1)."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class SandwichHooks(TrainHooks):
    """Sandwich rule + in-place distillation on a `Supernet` (possibly DDP-wrapped)."""

    static_shapes = False  # new widths every forward: never compiled

    def __init__(self, grid: WidthGrid, *, samples: int = 4, distill: bool = True,
                 seed: int = 0, widths: Callable[[int], list[dict[str, int]]] | None = None
                 ) -> None:
        self.grid, self.samples, self.distill, self.seed = grid, samples, distill, seed
        self._widths = widths  # override: step -> the widths to train (max first)
        self.step_index = 0
        self.macs_seen = 0  # forward MACs per image summed over the widths of every step
        self.calibration: list[Tensor] = []  # BN batches for the per-epoch held-out reading

    def widths_for(self, step: int) -> list[dict[str, int]]:
        if self._widths is not None:
            return self._widths(step)
        return self.grid.sandwich(self.seed, step, self.samples)

    def step(self, model: nn.Module, x: Tensor, y: Tensor, criterion: nn.Module,
             backward: Callable[[Tensor], None]) -> tuple[Tensor, Tensor]:
        net: Supernet = unwrap(model)
        widths = self.widths_for(self.step_index)
        ddp = isinstance(model, nn.parallel.DistributedDataParallel)
        soft = logits_max = loss_max = None
        for i, w in enumerate(widths):
            net.set_widths(w)
            sync = contextlib.nullcontext() if (not ddp or i == len(widths) - 1) else (
                model.no_sync())
            with sync:
                out = model(x)
                if i == 0:
                    loss = criterion(out, y)
                    logits_max, loss_max = out.detach(), loss.detach()
                    soft = F.softmax(logits_max.float(), dim=1)
                elif self.distill:
                    loss = soft_cross_entropy(out.float(), soft)
                else:
                    loss = criterion(out, y)
                backward(loss)
            self.macs_seen += self.grid.macs(w) * len(y)
        net.set_widths(self.grid.max)
        return loss_max, logits_max

    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        self.step_index = step + 1

    def evaluate(self, model: nn.Module, loader: Any, device: Any) -> dict[str, float]:
        """The max width on `loader` after BN recalibration (training mixes widths, so the
        running statistics belong to none of them)."""
        net: Supernet = unwrap(model)
        net.set_widths(self.grid.max)
        if self.calibration:
            recalibrate_bn(net, self.calibration, device=device, dtype=self.runtime.dtype,
                           channels_last=self.runtime.channels_last)
        return evaluate(net, loader, device=device, runtime=self.runtime)

    def state_dict(self) -> dict[str, Any]:
        return {"step_index": self.step_index, "macs_seen": self.macs_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_index = int(state.get("step_index", 0))
        self.macs_seen = int(state.get("macs_seen", 0))


class HeldOut:
    """Fixed BN-calibration batches (training set) and fixed scoring batches (held-out split):
    every candidate is judged on the same images."""

    def __init__(self, data: Any, bn_batches: int, eval_batches: int,
                 device: torch.device | str = "cpu", runtime: Runtime = FP32) -> None:
        if data.val is None:
            raise ValueError("held-out scoring needs a validation split of the training set")
        self.device, self.runtime = torch.device(device), runtime
        data.train.set_epoch(0)
        self.calib = _first(data.train, bn_batches)
        self.eval = _first(data.val, eval_batches)
        self.calib_images = sum(len(y) for _, y in self.calib)
        self.eval_images = sum(len(y) for _, y in self.eval)

    @torch.no_grad()
    def score(self, net: Supernet, widths: dict[str, int]) -> dict[str, float]:
        """Top-1 and loss at `widths` after recalibrating BN at those widths."""
        net.set_widths(widths)
        rt = self.runtime
        recalibrate_bn(net, [x for x, _ in self.calib], device=self.device, dtype=rt.dtype,
                       channels_last=rt.channels_last)
        was = net.training
        net.eval()
        correct, loss, n = 0, 0.0, 0
        for x, y in self.eval:
            x, y = rt.prepare_input(x.to(self.device)), y.to(self.device)
            with rt.autocast(self.device):
                out = net(x)
            loss += float(F.cross_entropy(out.float(), y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
            n += len(y)
        net.train(was)
        return {"top1": correct / max(n, 1), "loss": loss / max(n, 1)}

    def forward_images(self) -> int:
        """Images one score() forwards (calibration + scoring), for the cost ledger."""
        return self.calib_images + self.eval_images


def _first(loader: Any, n: int) -> list[tuple[Tensor, Tensor]]:
    out = []
    for i, (x, y) in enumerate(loader):
        if i >= n:
            break
        out.append((x, y))
    return out
