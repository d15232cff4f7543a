"""BatchNorm recalibration: running statistics measured afresh for the weights at hand.

A network whose channels changed (a supernet run at other widths, weights sliced out of it)
keeps running statistics that belong to other activations; a few batches in train mode with a
cumulative average (momentum=None) give it the statistics of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any],
                   device: torch.device | str | None = None, *,
                   dtype: torch.dtype | None = None, channels_last: bool = False) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them over `batches` (tensors,
    or (x, y) pairs whose first item is the input), as a cumulative average. The model runs in
    train mode under no_grad; its mode and BN momenta are restored. Returns the images seen.
    Device: where the batches go (default: the model's). dtype: the autocast dtype the
    forwards run in (None: fp32), so the statistics are those of the precision that uses them;
    channels_last: the batches' memory format."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    seen = 0
    device = torch.device(device)
    cast = (torch.autocast(device.type, dtype=dtype) if dtype is not None
            else contextlib.nullcontext())
    try:
        model.train()
        for batch in batches:
            x = batch[0] if isinstance(batch, list | tuple) else batch
            x = x.to(device, non_blocking=True)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with cast:
                model(x)
            seen += len(x)
    finally:
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)
    return seen
