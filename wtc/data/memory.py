"""Small datasets held in memory as one uint8 tensor: a source gives its `Arrays`, and
`in_memory` cuts them (classes, fraction, val split), resizes once and wraps them in
TensorLoaders. Fashion-MNIST, CIFAR-10 and the synthetic set go this way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from wtc.data.augment import resize
from wtc.data.config import DataBundle, DataConfig
from wtc.data.loaders import TensorLoader, dist_info
from wtc.data.splits import held_out_split, select_classes, stratified_split
from wtc.errors import DataError


@dataclass
class Arrays:
    """A source's images and labels (uint8 NxCxHxW, int64), with its class count, per-channel
    (mean, std) in [0, 1] pixel units and its training augmentation (pad at 32 pixels)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: int
    mean: Sequence[float]
    std: Sequence[float]
    augment: str = "none"  # "none" | "crop-flip" | "crop"
    pad: int = 0


# arrays(cfg, channels, resolution, num_classes): a source's images, before any cutting
Source = Callable[[DataConfig, int | None, int | None, int | None], Arrays]


def in_memory(source: Source) -> Callable[..., DataBundle]:
    """The registry entry of an in-memory source: make(cfg, channels, resolution, classes)."""

    def make(cfg: DataConfig, channels: int | None, resolution: int | None,
             num_classes: int | None) -> DataBundle:
        return bundle(cfg, source(cfg, channels, resolution, num_classes), channels, resolution)

    return make


def bundle(cfg: DataConfig, a: Arrays, channels: int | None, resolution: int | None
           ) -> DataBundle:
    """Cut, resize and load one source's arrays as `cfg` asks."""
    xtr, ytr, xte, yte, n_cls = a.train_x, a.train_y, a.test_x, a.test_y, a.classes
    aug, pad = a.augment, a.pad
    if cfg.classes is not None:  # (without a subset, no copy of the whole set)
        keep, ytr = select_classes(ytr, cfg.classes, n_cls)
        xtr = xtr[keep]
        keep_te, yte = select_classes(yte, cfg.classes, n_cls)
        xte = xte[keep_te]
    k = len(cfg.classes) if cfg.classes else n_cls

    xval = yval = None
    if cfg.val_split > 0 and cfg.val_min_per_class > 0:
        ti, vi = held_out_split(ytr, cfg.fraction, cfg.val_split, cfg.val_min_per_class,
                                cfg.seed)
        xval, yval = xtr[vi], ytr[vi]
        xtr, ytr = xtr[ti], ytr[ti]
    elif cfg.fraction < 1.0:
        sel, _ = stratified_split(ytr, cfg.fraction, cfg.seed)
        xtr, ytr = xtr[sel], ytr[sel]
    if cfg.val_split > 0 and xval is None:
        vi, ti = stratified_split(ytr, cfg.val_split, cfg.seed + 1)
        if len(ti) == 0:
            raise DataError(f"val_split={cfg.val_split} leaves no training images")
        xval, yval = xtr[vi], ytr[vi]
        xtr, ytr = xtr[ti], ytr[ti]

    res = cfg.resolution or resolution or xtr.shape[-1]
    xtr = resize(xtr, res)  # the test set is resized by its loader, if it is ever read
    if xval is not None:
        xval = resize(xval, res)
    if not cfg.augment:
        aug = "none"
    pad = max(0, round(pad * res / 32)) if pad else 0

    c_data = xtr.shape[1]
    out_c = channels if (channels and c_data == 1 and channels != 1) else None
    mean, std = a.mean, a.std
    rank, world = dist_info()
    eval_bs = cfg.eval_batch_size or max(cfg.batch_size, 256)
    common = {"mean": mean, "std": std, "out_channels": out_c}
    train = TensorLoader(xtr, ytr, batch_size=cfg.batch_size, shuffle=True, augment=aug,
                         pad=pad, seed=cfg.seed, rank=rank, world_size=world, drop_last=True,
                         **common)
    val = (TensorLoader(xval, yval, batch_size=eval_bs, **common)
           if xval is not None else None)
    test = TensorLoader(xte, yte, batch_size=eval_bs, resize_to=res, **common)
    return DataBundle(train=train, val=val, test=test, num_classes=k, channels=out_c or c_data,
                      resolution=res, train_size=len(ytr), name=cfg.data)
