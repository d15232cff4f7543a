"""Datasets for training and search: Fashion-MNIST, CIFAR-10, ImageFolder trees and a synthetic set.

Small datasets (fashion-mnist, cifar10, synthetic) live in memory as one uint8 tensor and are
augmented per batch on tensors: on a CPU, per-image PIL transforms cost more than the network.
ImageFolder trees (ImageNet layout) go through torchvision transforms and a DataLoader.

Every loader is deterministic given (seed, epoch, rank): shuffling and augmentation draw from a
generator seeded per epoch, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator

from wtc.errors import ConfigError, DataError

DATASETS = ("fashion-mnist", "cifar10", "imagefolder", "synthetic")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_ROOT = Path(os.environ.get("WTC_DATA_ROOT", Path.home() / ".cache" / "wtc" / "data"))

# per-dataset (mean, std) in [0, 1] pixel units, per channel
_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "synthetic": ((0.5,), (0.25,)),
}


class DataConfig(BaseModel):
    """What data to train on and how to cut it; `TrainConfig` extends this with the optimizer."""

    model_config = ConfigDict(extra="forbid")

    data: Literal["fashion-mnist", "cifar10", "imagefolder", "synthetic"]
    data_root: str | None = None
    fraction: float = Field(1.0, gt=0.0, le=1.0, description="stratified share of train images")
    classes: list[int] | None = Field(None, description="keep these classes, relabelled 0..k-1")
    resolution: int | None = Field(None, ge=4, description="resize inputs (default: the spec's)")
    val_split: float = Field(0.0, ge=0.0, lt=1.0, description="stratified hold-out from train")
    augment: bool = True
    batch_size: int = Field(128, ge=1)
    eval_batch_size: int | None = Field(None, ge=1)
    workers: int = Field(0, ge=0, description="DataLoader workers (imagefolder only)")
    seed: int = 0
    # synthetic set only (defaults follow the spec: channels, resolution, classes)
    synthetic_size: int = Field(2048, ge=1)
    synthetic_test_size: int = Field(512, ge=1)
    synthetic_channels: int | None = Field(None, ge=1)
    synthetic_resolution: int | None = Field(None, ge=4)
    synthetic_classes: int | None = Field(None, ge=2)

    @field_validator("classes")
    @classmethod
    def _classes_unique(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("give at least one class")
            if len(set(v)) != len(v):
                raise ValueError(f"classes repeat: {v}")
            if min(v) < 0:
                raise ValueError("class indices are >= 0")
        return v


@dataclass
class DataBundle:
    """Loaders plus the shape facts a model needs. `val` is None without a val split."""

    train: Any
    val: Any | None
    test: Any
    num_classes: int
    channels: int
    resolution: int
    train_size: int
    name: str
    class_names: list[str] | None = None


# --------------------------------------------------------------------------- distributed


def dist_info() -> tuple[int, int]:
    """(rank, world_size) from an initialized process group, else torchrun's env, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


# --------------------------------------------------------------------------- in-memory loader


class TensorLoader:
    """Batches from a uint8 NxCxHxW tensor, normalized and augmented per batch on tensors.

    Shuffling uses `DistributedSampler` (one replica when not distributed) so ranks get disjoint
    shards; augmentation draws from a generator seeded by (seed, epoch, rank).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                 mean: Sequence[float], std: Sequence[float], shuffle: bool = False,
                 augment: Literal["none", "crop-flip", "crop"] = "none", pad: int = 4,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 out_channels: int | None = None) -> None:
        from torch.utils.data import DistributedSampler

        self.images, self.labels = images, labels
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
                x = _random_crop(x, self.pad, gen)
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


def _random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
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


# --------------------------------------------------------------------------- raw sources


def _read_idx(path: Path) -> torch.Tensor:
    """Decode one (gzipped) IDX file, the MNIST format: magic, dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an uint8 IDX file (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    start = 4 + 4 * ndim
    count = math.prod(dims)
    if len(raw) - start != count:
        raise DataError(f"{path} is truncated: expected {count} values, found {len(raw) - start}")
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=start).copy()).view(*dims)


def _find_idx(root: Path, stem: str) -> Path | None:
    for d in (root, root / "FashionMNIST" / "raw", root / "fashion-mnist"):
        for name in (f"{stem}.gz", stem):
            if (d / name).is_file():
                return d / name
    return None


@functools.lru_cache(maxsize=4)
def _fashion_mnist_idx(root: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r = Path(root)
    paths = [_find_idx(r, s) for s in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    if any(p is None for p in paths):
        raise FileNotFoundError(root)
    xtr, ytr, xte, yte = (_read_idx(p) for p in paths)  # type: ignore[arg-type]
    return xtr.unsqueeze(1), ytr.long(), xte.unsqueeze(1), yte.long()


def load_fashion_mnist(root: str | None = None) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y) as uint8 Nx1x28x28 and int64 labels.

    Looks in --data-root, then where Debian's `dataset-fashion-mnist` installs it, then lets
    torchvision download it under the root (needs a network).
    """
    candidates = [Path(root)] if root else []
    candidates.append(FASHION_MNIST_DIR)
    for c in candidates:
        try:
            return _fashion_mnist_idx(str(c))
        except FileNotFoundError:
            continue
    dl_root = Path(root) if root else DEFAULT_ROOT
    try:
        from torchvision.datasets import FashionMNIST

        tr = FashionMNIST(str(dl_root), train=True, download=True)
        te = FashionMNIST(str(dl_root), train=False, download=True)
        return (tr.data.unsqueeze(1), tr.targets.long(), te.data.unsqueeze(1),
                te.targets.long())
    except Exception as e:
        where = ", ".join(str(c) for c in candidates)
        raise DataError(
            f"Fashion-MNIST not found (looked in {where}) and the download into {dl_root} "
            f"failed ({type(e).__name__}). Install it with `apt-get install "
            "dataset-fashion-mnist`, or pass --data-root DIR holding "
            "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz"
        ) from None


@functools.lru_cache(maxsize=2)
def load_cifar10(root: str) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y) from a local CIFAR-10 python-version tree."""
    from torchvision.datasets import CIFAR10

    r = Path(root)
    if not r.is_dir():
        raise DataError(f"CIFAR-10 root {r} does not exist; expected a directory holding "
                        "cifar-10-batches-py/ (the python version from cs.toronto.edu)")
    base = r.parent if r.name == "cifar-10-batches-py" else r
    try:
        tr = CIFAR10(str(base), train=True, download=False)
        te = CIFAR10(str(base), train=False, download=False)
    except Exception:
        raise DataError(
            f"no valid CIFAR-10 under {base}: expected {base / 'cifar-10-batches-py'} with "
            "data_batch_1..5 and test_batch (missing or corrupted)"
        ) from None

    def t(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(),
                torch.tensor(ds.targets, dtype=torch.long))

    return (*t(tr), *t(te))


def make_synthetic(n: int, *, channels: int = 3, resolution: int = 16, classes: int = 10,
                   seed: int = 0, split: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded class-dependent images: one smooth random template per class plus pixel noise.

    Templates depend only on `seed`; `split` picks different noise and labels (train vs test).
    A few conv layers separate them in well under a second of CPU.
    """
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(classes, channels, 4, 4, generator=g)
    templates = F.interpolate(coarse, size=(resolution, resolution), mode="bilinear",
                              align_corners=False)
    g2 = torch.Generator().manual_seed(seed * 31 + 1 + split)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=g2)]
    noise = torch.randn(n, channels, resolution, resolution, generator=g2) * 0.15
    x = (templates[labels] + noise).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x, labels


# --------------------------------------------------------------------------- cutting


def stratified_split(labels: torch.Tensor, share: float, seed: int,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, rest) indices: `share` of each class kept (at least one), seeded."""
    g = torch.Generator().manual_seed(seed)
    kept, rest = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = min(len(idx), max(1, round(share * len(idx))))
        kept.append(idx[:k])
        rest.append(idx[k:])
    return torch.sort(torch.cat(kept)).values, torch.sort(torch.cat(rest)).values


def _select_classes(labels: torch.Tensor, classes: list[int] | None, n_classes: int,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices to keep, relabelled labels) for a class subset; identity without one."""
    if classes is None:
        return torch.arange(len(labels)), labels
    bad = [c for c in classes if c >= n_classes]
    if bad:
        raise DataError(f"classes {bad} do not exist: the dataset has classes 0..{n_classes - 1}")
    remap = torch.full((n_classes,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    new = remap[labels]
    keep = torch.nonzero(new >= 0).flatten()
    return keep, new[keep]


def _resize(x: torch.Tensor, r: int) -> torch.Tensor:
    """Resize a uint8 image tensor once, in chunks (antialiased when shrinking)."""
    if x.shape[-1] == r and x.shape[-2] == r:
        return x
    out = []
    for chunk in x.split(4096):
        y = F.interpolate(chunk.float(), size=(r, r), mode="bilinear", align_corners=False,
                          antialias=r < chunk.shape[-1])
        out.append(y.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


# --------------------------------------------------------------------------- entry point


def make_data(cfg: DataConfig, *, channels: int | None = None, resolution: int | None = None,
              num_classes: int | None = None) -> DataBundle:
    """Loaders for `cfg`. The keyword hints are what the model expects (from its spec).

    Resolution defaults to the hint; grayscale data is replicated when the model wants 3
    channels; a model with fewer logits than the data has classes is refused.
    """
    if cfg.data == "imagefolder":
        bundle = _make_imagefolder(cfg, resolution)
    else:
        bundle = _make_in_memory(cfg, channels, resolution, num_classes)
    if channels is not None and channels != bundle.channels:
        raise DataError(f"the model takes {channels} input channels but {cfg.data} images "
                        f"have {bundle.channels}")
    if num_classes is not None and bundle.num_classes > num_classes:
        raise DataError(f"{cfg.data} has {bundle.num_classes} classes but the model has only "
                        f"{num_classes} outputs; pass --classes to train on a subset")
    return bundle


def _make_in_memory(cfg: DataConfig, channels: int | None, resolution: int | None,
                    num_classes: int | None) -> DataBundle:
    if cfg.data == "fashion-mnist":
        xtr, ytr, xte, yte = load_fashion_mnist(cfg.data_root)
        n_cls, aug, pad = 10, "crop-flip", 2
    elif cfg.data == "cifar10":
        if not cfg.data_root:
            raise DataError("cifar10 needs --data-root DIR holding cifar-10-batches-py/")
        xtr, ytr, xte, yte = load_cifar10(cfg.data_root)
        n_cls, aug, pad = 10, "crop-flip", 4
    elif cfg.data == "synthetic":
        c = cfg.synthetic_channels or channels or 3
        r = cfg.synthetic_resolution or resolution or 16
        n_cls = cfg.synthetic_classes or num_classes or 10
        xtr, ytr = make_synthetic(cfg.synthetic_size, channels=c, resolution=r, classes=n_cls,
                                  seed=cfg.seed, split=0)
        xte, yte = make_synthetic(cfg.synthetic_test_size, channels=c, resolution=r,
                                  classes=n_cls, seed=cfg.seed, split=1)
        aug, pad = "none", 0
    else:  # pragma: no cover - pydantic guards the names
        raise ConfigError(f"unknown dataset {cfg.data!r}; choose one of {', '.join(DATASETS)}")

    keep, ytr = _select_classes(ytr, cfg.classes, n_cls)
    xtr = xtr[keep]
    keep_te, yte = _select_classes(yte, cfg.classes, n_cls)
    xte = xte[keep_te]
    k = len(cfg.classes) if cfg.classes else n_cls

    if cfg.fraction < 1.0:
        sel, _ = stratified_split(ytr, cfg.fraction, cfg.seed)
        xtr, ytr = xtr[sel], ytr[sel]
    xval = yval = None
    if cfg.val_split > 0:
        vi, ti = stratified_split(ytr, cfg.val_split, cfg.seed + 1)
        if len(ti) == 0:
            raise DataError(f"val_split={cfg.val_split} leaves no training images")
        xval, yval = xtr[vi], ytr[vi]
        xtr, ytr = xtr[ti], ytr[ti]

    res = cfg.resolution or resolution or xtr.shape[-1]
    xtr, xte = _resize(xtr, res), _resize(xte, res)
    if xval is not None:
        xval = _resize(xval, res)
    if not cfg.augment:
        aug = "none"
    pad = max(0, round(pad * res / 32)) if pad else 0

    c_data = xtr.shape[1]
    out_c = channels if (channels and c_data == 1 and channels != 1) else None
    mean, std = _STATS[cfg.data]
    rank, world = dist_info()
    eval_bs = cfg.eval_batch_size or max(cfg.batch_size, 256)
    common = {"mean": mean, "std": std, "out_channels": out_c}
    train = TensorLoader(xtr, ytr, batch_size=cfg.batch_size, shuffle=True, augment=aug,
                         pad=pad, seed=cfg.seed, rank=rank, world_size=world, drop_last=True,
                         **common)
    val = (TensorLoader(xval, yval, batch_size=eval_bs, **common)
           if xval is not None else None)
    test = TensorLoader(xte, yte, batch_size=eval_bs, **common)
    return DataBundle(train=train, val=val, test=test, num_classes=k, channels=out_c or c_data,
                      resolution=res, train_size=len(ytr), name=cfg.data)


# --------------------------------------------------------------------------- imagefolder


class _Remapped(torch.utils.data.Dataset):
    """A view of an ImageFolder: chosen indices, labels remapped to 0..k-1."""

    def __init__(self, base: Any, indices: torch.Tensor, labels: torch.Tensor) -> None:
        self.base, self.indices, self.labels = base, indices.tolist(), labels.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, _ = self.base[self.indices[i]]
        return x, self.labels[i]


class _EpochLoader:
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


def _make_imagefolder(cfg: DataConfig, resolution: int | None) -> DataBundle:
    from torchvision import datasets, transforms

    if not cfg.data_root:
        raise DataError("imagefolder needs --data-root DIR with train/ and val/ class folders "
                        "(ImageNet layout)")
    root = Path(cfg.data_root)
    missing = [d for d in ("train", "val") if not (root / d).is_dir()]
    if missing:
        raise DataError(f"{root} is not an ImageFolder tree: missing {', '.join(missing)}/; "
                        "expected train/CLASS/*.jpg and val/CLASS/*.jpg")
    res = cfg.resolution or resolution or 224
    mean, std = _STATS["imagefolder"]
    norm = transforms.Normalize(mean, std)
    train_tf = transforms.Compose([
        transforms.RandomResizedCrop(res), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), norm] if cfg.augment else [
        transforms.Resize(round(res * 256 / 224)), transforms.CenterCrop(res),
        transforms.ToTensor(), norm])
    eval_tf = transforms.Compose([transforms.Resize(round(res * 256 / 224)),
                                  transforms.CenterCrop(res), transforms.ToTensor(), norm])
    try:
        tr_aug = datasets.ImageFolder(str(root / "train"), transform=train_tf)
        tr_eval = datasets.ImageFolder(str(root / "train"), transform=eval_tf)
        te = datasets.ImageFolder(str(root / "val"), transform=eval_tf)
    except (FileNotFoundError, OSError) as e:
        raise DataError(f"cannot read ImageFolder tree {root}: {e}") from None
    if tr_aug.classes != te.classes:
        raise DataError(f"{root}/train and {root}/val have different class folders")
    n_cls = len(tr_aug.classes)
    ytr = torch.tensor(tr_aug.targets, dtype=torch.long)
    yte = torch.tensor(te.targets, dtype=torch.long)
    keep, ytr = _select_classes(ytr, cfg.classes, n_cls)
    keep_te, yte = _select_classes(yte, cfg.classes, n_cls)
    if cfg.fraction < 1.0:
        sel, _ = stratified_split(ytr, cfg.fraction, cfg.seed)
        keep, ytr = keep[sel], ytr[sel]
    val = None
    rank, world = dist_info()
    eval_bs = cfg.eval_batch_size or max(cfg.batch_size, 256)
    common = {"workers": cfg.workers, "seed": cfg.seed}
    if cfg.val_split > 0:
        vi, ti = stratified_split(ytr, cfg.val_split, cfg.seed + 1)
        val = _EpochLoader(_Remapped(tr_eval, keep[vi], ytr[vi]), batch_size=eval_bs,
                           shuffle=False, rank=0, world_size=1, drop_last=False, **common)
        keep, ytr = keep[ti], ytr[ti]
    train = _EpochLoader(_Remapped(tr_aug, keep, ytr), batch_size=cfg.batch_size, shuffle=True,
                         rank=rank, world_size=world, drop_last=True, **common)
    test = _EpochLoader(_Remapped(te, keep_te, yte), batch_size=eval_bs, shuffle=False, rank=0,
                        world_size=1, drop_last=False, **common)
    names = [tr_aug.classes[c] for c in cfg.classes] if cfg.classes else list(tr_aug.classes)
    return DataBundle(train=train, val=val, test=test, num_classes=len(names), channels=3,
                      resolution=res, train_size=len(ytr), name="imagefolder",
                      class_names=names)
