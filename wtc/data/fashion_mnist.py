"""Fashion-MNIST: from --data-root, where Debian's `dataset-fashion-mnist` installs it, or
downloaded by torchvision (needs a network). 28x28 grey images, 10 classes."""

from __future__ import annotations

import functools
import gzip
import math
from pathlib import Path

import numpy as np
import torch

from wtc.data.config import DEFAULT_ROOT, DataConfig
from wtc.data.memory import Arrays, in_memory
from wtc.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = (0.2860,), (0.3530,)


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

    Looks in --data-root when one is given (only there: a root the user names is never
    silently replaced by the system copy, and one that does not exist is an error), else where
    Debian's `dataset-fashion-mnist` installs it; then lets torchvision download it under the
    root (needs a network).
    """
    if root and not Path(root).is_dir():
        raise DataError(f"--data-root {root}: no such folder (Fashion-MNIST is read from the "
                        "folder you name; leave --data-root out to use the installed copy)")
    candidates = [Path(root)] if root else [FASHION_MNIST_DIR]
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


def arrays(cfg: DataConfig, channels: int | None, resolution: int | None,
           num_classes: int | None) -> Arrays:
    xtr, ytr, xte, yte = load_fashion_mnist(cfg.data_root)
    return Arrays(xtr, ytr, xte, yte, classes=10, mean=MEAN, std=STD, augment="crop-flip",
                  pad=2)


# the DATASETS entry (declared in wtc/data/config.py)
make = in_memory(arrays)
