"""CIFAR-10 from a local python-version tree (cifar-10-batches-py/). 32x32 RGB, 10 classes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from wtc.data.config import DataConfig
from wtc.data.memory import Arrays, in_memory
from wtc.errors import DataError

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


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


def arrays(cfg: DataConfig, channels: int | None, resolution: int | None,
           num_classes: int | None) -> Arrays:
    if not cfg.data_root:
        raise DataError("cifar10 needs --data-root DIR holding cifar-10-batches-py/")
    xtr, ytr, xte, yte = load_cifar10(cfg.data_root)
    return Arrays(xtr, ytr, xte, yte, classes=10, mean=MEAN, std=STD, augment="crop-flip",
                  pad=4)


# the DATASETS entry (declared in wtc/data/config.py)
make = in_memory(arrays)
