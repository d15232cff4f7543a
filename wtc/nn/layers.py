"""Torch modules for the ops torch has no single module for: layer norm over the channels of an
NCHW map, layer scale, stochastic depth, a channel chunk and a channel shuffle.

All of them work at any channel count (the count is read from the input where it matters), run
as identity where they should at eval (DropPath), and export to ONNX with the TorchScript and
the dynamo exporters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of every position of an NCHW map (ConvNeXt's
    LayerNorm2d): the same parameters as `nn.LayerNorm(channels)`."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """Multiply each channel by a learnable factor, initialised to `init` (CaiT, ConvNeXt)."""

    def __init__(self, channels: int, init: float = 1.0, spatial: bool = True) -> None:
        super().__init__()
        shape = (channels, 1, 1) if spatial else (channels,)
        self.init = float(init)
        self.weight = nn.Parameter(torch.full(shape, self.init))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(self.init)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): while training, zero the whole input of a sample
    with probability p and scale the rest by 1 / (1 - p); the identity at eval and in export."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ChannelChunk(nn.Module):
    """Chunk `chunk` of `chunks` equal slices of the channels (`torch.chunk` along dim 1)."""

    def __init__(self, chunks: int, chunk: int) -> None:
        super().__init__()
        self.chunks, self.chunk = int(chunks), int(chunk)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[1] // self.chunks
        return x.narrow(1, self.chunk * size, size)

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, chunk={self.chunk}"


class ChannelShuffle(nn.Module):
    """Channel shuffle (ShuffleNet): view the channels as (groups, C / groups), transpose,
    flatten, so the next grouped or split op sees channels from every group."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = int(groups)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
