"""Datasets for training and search: one module per source, a registry of them, `make_data`.

Small datasets (fashion-mnist, cifar10, synthetic) live in memory as one uint8 tensor and are
augmented per batch on tensors (memory.py): on a CPU, per-image PIL transforms cost more than the
network. ImageFolder trees (ImageNet layout) go through torchvision transforms and a DataLoader.

Every loader is deterministic given (seed, epoch, rank): shuffling and augmentation draw from a
generator seeded per epoch, so a resumed run sees exactly the batches an uninterrupted one would.

A new dataset is one module with a `make(cfg, channels, resolution, num_classes) -> DataBundle`
(an in-memory set writes `arrays(...) -> Arrays` and `make = in_memory(arrays)`) and one
`DATASETS.declare` line in config.py.

Importing this package imports no torch: `DataConfig`, `DATASETS` and `make_data` are here,
the loaders and datasets (torch) are imported on first use, so help and validation list the
datasets instantly.
"""

from __future__ import annotations

from wtc.data.config import DATASETS, DEFAULT_ROOT, DataBundle, DataConfig
from wtc.errors import DataError
from wtc.lazy import lazy_exports
from wtc.spec import Spec

# public name -> the module that defines it (torch), imported on first attribute access
_LAZY = {
    "load_cifar10": "wtc.data.cifar10", "FASHION_MNIST_DIR": "wtc.data.fashion_mnist",
    "load_fashion_mnist": "wtc.data.fashion_mnist", "make_synthetic": "wtc.data.synthetic",
    "random_crop": "wtc.data.augment", "resize": "wtc.data.augment",
    "EpochLoader": "wtc.data.loaders", "TensorLoader": "wtc.data.loaders",
    "dist_info": "wtc.data.loaders", "Arrays": "wtc.data.memory", "in_memory": "wtc.data.memory",
    "select_classes": "wtc.data.splits", "stratified_split": "wtc.data.splits",
}
_SUBMODULES = ("augment", "cifar10", "fashion_mnist", "imagefolder", "loaders", "memory",
               "splits", "synthetic")

__all__ = [  # the lazy names resolve through __getattr__
    "DATASETS", "DEFAULT_ROOT", "FASHION_MNIST_DIR", "Arrays", "DataBundle", "DataConfig",
    "EpochLoader", "TensorLoader", "dist_info", "in_memory", "load_cifar10",
    "load_fashion_mnist", "make_data", "make_data_for", "make_synthetic", "random_crop",
    "resize", "select_classes", "stratified_split",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), _SUBMODULES)


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
