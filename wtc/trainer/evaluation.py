"""Evaluation: top-1 and loss over a loader (in a run's precision), forward MACs of a run
(analytic, or by torch's counter at another resolution)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from wtc.graph import StageGraph, count_macs
from wtc.graph.cost import HasGroups
from wtc.trainer.precision import FP32, Runtime
from wtc.trainer.state import unwrap

if TYPE_CHECKING:
    from wtc.data import DataBundle


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, *, device: torch.device | str | None = None,
             runtime: Runtime = FP32) -> dict[str, float]:
    """Top-1 (fraction in [0, 1]) and mean cross-entropy of `model` over `loader`, in the
    precision and memory format of `runtime` (default fp32 NCHW)."""
    m = unwrap(model)
    dev = torch.device(device) if device is not None else next(m.parameters()).device
    was = m.training
    m.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    n = 0
    for x, y in loader:
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with runtime.autocast(dev):
            out = m(runtime.prepare_input(x))
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum").double()
        correct += (out.argmax(1) == y).sum()
        n += len(y)
    m.train(was)
    if n == 0:
        return {"top1": float("nan"), "loss": float("nan"), "n": 0}
    return {"top1": correct.item() / n, "loss": loss_sum.item() / n, "n": n}


def torch_forward_macs(model: nn.Module, sample: torch.Tensor) -> int:
    """Forward MACs per image measured with torch's flop counter (fallback when not passed)."""
    from torch.utils.flop_counter import FlopCounterMode

    m = unwrap(model)
    was = m.training
    m.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(sample[:1])
    m.train(was)
    return int(fc.get_total_flops() // 2)


def forward_macs(graph: StageGraph, widths: Mapping[str, int] | HasGroups, model: nn.Module,
                 data: DataBundle) -> int:
    """Per-image forward MACs of `model` (`graph` at `widths`) on `data`: analytic at the
    spec's resolution, measured otherwise (MACs scale with the pixel count)."""
    if data.resolution == graph.spec.input.resolution:
        return int(count_macs(graph, widths))
    return torch_forward_macs(
        model, torch.zeros(1, data.channels, data.resolution, data.resolution))
