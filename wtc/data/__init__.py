"""Datasets for training and search: one module per source, a registry of them, `make_data`.

Small datasets (fashion-mnist, cifar10, synthetic) live in memory as one uint8 tensor and are
augmented per batch on tensors (memory.py): on a CPU, per-image PIL transforms cost more than the
network. ImageFolder trees (ImageNet layout) go through torchvision transforms and a DataLoader.

Every loader is deterministic given (seed, epoch, rank): shuffling and augmentation draw from a
generator seeded per epoch, so a resumed run sees exactly the batches an uninterrupted one would.

A new dataset is one module (an `arrays(cfg, channels, resolution, num_classes) -> Arrays`
function for an in-memory set, or a `make(...) -> DataBundle`) and one `DATASETS.add` line here.
"""

from __future__ import annotations

from wtc.data import cifar10, fashion_mnist, imagefolder, synthetic
from wtc.data.augment import random_crop, resize
from wtc.data.cifar10 import load_cifar10
from wtc.data.config import DATASETS, DEFAULT_ROOT, DataBundle, DataConfig
from wtc.data.fashion_mnist import FASHION_MNIST_DIR, load_fashion_mnist
from wtc.data.loaders import EpochLoader, TensorLoader, dist_info
from wtc.data.memory import Arrays, in_memory
from wtc.data.splits import select_classes, stratified_split
from wtc.data.synthetic import make_synthetic
from wtc.errors import DataError
from wtc.spec import Spec

__all__ = [
    "DATASETS", "DEFAULT_ROOT", "FASHION_MNIST_DIR", "Arrays", "DataBundle", "DataConfig",
    "EpochLoader", "TensorLoader", "dist_info", "in_memory", "load_cifar10",
    "load_fashion_mnist", "make_data", "make_data_for", "make_synthetic", "random_crop",
    "resize", "select_classes", "stratified_split",
]

DATASETS.add("fashion-mnist", in_memory(fashion_mnist.arrays))
DATASETS.add("cifar10", in_memory(cifar10.arrays))
DATASETS.add("imagefolder", imagefolder.make)
DATASETS.add("synthetic", in_memory(synthetic.arrays))


def make_data(cfg: DataConfig, *, channels: int | None = None, resolution: int | None = None,
              num_classes: int | None = None) -> DataBundle:
    """Loaders for `cfg`. The keyword hints are what the model expects (from its spec).

    Resolution defaults to the hint; grayscale data is replicated when the model wants 3
    channels; a model with fewer logits than the data has classes is refused.
    """
    bundle = DATASETS.get(cfg.data)(cfg, channels, resolution, num_classes)
    if channels is not None and channels != bundle.channels:
        raise DataError(f"the model takes {channels} input channels but {cfg.data} images "
                        f"have {bundle.channels}")
    if num_classes is not None and bundle.num_classes > num_classes:
        raise DataError(f"{cfg.data} has {bundle.num_classes} classes but the model has only "
                        f"{num_classes} outputs; pass --classes to train on a subset")
    return bundle


def make_data_for(spec: Spec, cfg: DataConfig) -> DataBundle:
    """Loaders for `cfg` shaped for `spec`'s model: its input channels and classes, and its
    resolution unless `cfg.resolution` asks for another (every caller that has a spec)."""
    return make_data(cfg, channels=spec.input.channels,
                     resolution=cfg.resolution or spec.input.resolution,
                     num_classes=spec.classes)
