"""Augmentation and resizing on whole uint8/float image batches (tensors, no PIL): on a CPU,
per-image transforms cost more than the network."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """torchvision's RandomCrop(size, padding=pad) for a whole batch, by one gather."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]  # BxHx1
    cols = (ox[:, None] + torch.arange(w))[:, None, :]  # Bx1xW
    out = xp[torch.arange(b)[:, None, None], :, rows, cols]  # BxHxWxC
    return out.permute(0, 3, 1, 2)


def resize(x: torch.Tensor, r: int) -> torch.Tensor:
    """Resize a uint8 image tensor once, in chunks (antialiased when shrinking)."""
    if x.shape[-1] == r and x.shape[-2] == r:
        return x
    out = []
    for chunk in x.split(4096):
        y = F.interpolate(chunk.float(), size=(r, r), mode="bilinear", align_corners=False,
                          antialias=r < chunk.shape[-1])
        out.append(y.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)
