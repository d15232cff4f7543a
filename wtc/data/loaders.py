"""Loaders: `TensorLoader` (batches from an in-memory uint8 tensor, augmented per batch on
tensors) and `EpochLoader` (a DataLoader over a Dataset); both replay an epoch exactly from
(seed, epoch, rank), and shard over ranks with a DistributedSampler."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch

from wtc.data.augment import random_crop, resize


def dist_info() -> tuple[int, int]:
    """(rank, world_size) from an initialized process group, else torchrun's env, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class TensorLoader:
    """Batches from a uint8 NxCxHxW tensor, normalized and augmented per batch on tensors.

    Shuffling uses `DistributedSampler` (one replica when not distributed) so ranks get disjoint
    shards; augmentation draws from a generator seeded by (seed, epoch, rank).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                 mean: Sequence[float], std: Sequence[float], shuffle: bool = False,
                 augment: Literal["none", "crop-flip", "crop"] = "none", pad: int = 4,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 out_channels: int | None = None, resize_to: int | None = None) -> None:
        from torch.utils.data import DistributedSampler

        # resize_to: resized once, on first use (a test set a search never reads costs nothing)
        self._images, self._resize_to, self.labels = images, resize_to, labels
        self.batch_size, self.shuffle, self.augment, self.pad = batch_size, shuffle, augment, pad
        self.seed, self.rank, self.world_size = seed, rank, world_size
        c = images.shape[1]
        self.repeat = 1
        if out_channels is not None and out_channels != c:
            self.repeat = out_channels  # grayscale replicated to the model's channels
        self.mean = _stat(mean, c * self.repeat)
        self.std = _stat(std, c * self.repeat)
        self.sampler = DistributedSampler(_Len(len(labels)), num_replicas=world_size, rank=rank,
                                          shuffle=shuffle, seed=seed, drop_last=False)
        self.drop_last = drop_last and self.sampler.num_samples >= batch_size
        self.epoch = 0

    @property
    def images(self) -> torch.Tensor:
        if self._resize_to is not None:
            self._images, self._resize_to = resize(self._images, self._resize_to), None
        return self._images

    def set_epoch(self, epoch: int) -> None:
        """Pick the epoch whose shuffle and augmentation to replay."""
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    @property
    def num_samples(self) -> int:
        """Images this rank sees per epoch."""
        n = self.sampler.num_samples
        return (n // self.batch_size) * self.batch_size if self.drop_last else n

    def __len__(self) -> int:
        n = self.sampler.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = torch.tensor(list(iter(self.sampler)), dtype=torch.long)
        gen = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + self.epoch * 7919 + self.rank) % (2**63))
        for b in range(len(self)):
            j = idx[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.images[j].float().div_(255.0)
            if self.augment != "none":
                x = random_crop(x, self.pad, gen)
                if self.augment == "crop-flip":
                    flip = torch.rand(x.shape[0], generator=gen) < 0.5
                    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            if self.repeat > 1:
                x = x.expand(-1, self.repeat, -1, -1)
            x = (x - self.mean) / self.std
            yield x.contiguous(), self.labels[j]


class _Len:
    """A sized stand-in so DistributedSampler can produce indices without a Dataset."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def _stat(values: Sequence[float], channels: int) -> torch.Tensor:
    v = list(values)
    if len(v) == 1:
        v = v * channels
    return torch.tensor(v[:channels], dtype=torch.float32).view(1, -1, 1, 1)


class Remapped(torch.utils.data.Dataset):
    """A view of an ImageFolder: chosen indices, labels remapped to 0..k-1."""

    def __init__(self, base: Any, indices: torch.Tensor, labels: torch.Tensor) -> None:
        self.base, self.indices, self.labels = base, indices.tolist(), labels.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, _ = self.base[self.indices[i]]
        return x, self.labels[i]


class EpochLoader:
    """A DataLoader whose DistributedSampler follows `set_epoch`, like TensorLoader."""

    def __init__(self, dataset: Any, *, batch_size: int, shuffle: bool, workers: int, seed: int,
                 rank: int, world_size: int, drop_last: bool) -> None:
        from torch.utils.data import DataLoader, DistributedSampler

        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                          shuffle=shuffle, seed=seed, drop_last=False)
        self.seed, self.epoch = seed, 0
        drop_last = drop_last and self.sampler.num_samples >= batch_size
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler,
                                 num_workers=workers, drop_last=drop_last,
                                 persistent_workers=workers > 0,
                                 pin_memory=torch.cuda.is_available())
        self.num_samples = (len(self.loader) * batch_size if drop_last
                            else self.sampler.num_samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)
        torch.manual_seed(self.seed + 1000 * epoch)  # per-image transforms in the main process

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)
