"""A seeded synthetic set for tests: class templates plus noise, any channels, resolution and
number of classes (default: the spec's)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wtc.data.config import DataConfig
from wtc.data.memory import Arrays, in_memory
from wtc.errors import DataError
from wtc.limits import DEFAULT_MEMORY_SHARE, human_bytes, physical_memory

MEAN, STD = (0.5,), (0.25,)


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


def arrays(cfg: DataConfig, channels: int | None, resolution: int | None,
           num_classes: int | None) -> Arrays:
    c = cfg.synthetic_channels or channels or 3
    r = cfg.synthetic_resolution or resolution or 16
    n_cls = cfg.synthetic_classes or num_classes or 10
    need = (cfg.synthetic_size + cfg.synthetic_test_size) * c * r * r * 5  # uint8 + noise
    if need > DEFAULT_MEMORY_SHARE * physical_memory():
        raise DataError(f"the synthetic set ({cfg.synthetic_size:,} + "
                        f"{cfg.synthetic_test_size:,} images of {c}x{r}x{r}) needs about "
                        f"{human_bytes(need)}, over half this machine's memory")
    xtr, ytr = make_synthetic(cfg.synthetic_size, channels=c, resolution=r, classes=n_cls,
                              seed=cfg.seed, split=0)
    xte, yte = make_synthetic(cfg.synthetic_test_size, channels=c, resolution=r, classes=n_cls,
                              seed=cfg.seed, split=1)
    return Arrays(xtr, ytr, xte, yte, classes=n_cls, mean=MEAN, std=STD, augment="none", pad=0)


# the DATASETS entry (declared in wtc/data/config.py)
make = in_memory(arrays)
