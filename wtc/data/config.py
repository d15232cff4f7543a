"""What data to use and how to cut it (`DataConfig`), what a model gets back (`DataBundle`),
and the dataset registry the config is checked against (each dataset declared here by its
module's `make`, imported on first use)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from wtc.limits import (
    MAX_BATCH,
    MAX_CHANNELS,
    MAX_CLASSES,
    MAX_RESOLUTION,
    MAX_SEED,
    MAX_SYNTHETIC_IMAGES,
    MAX_THREADS,
)
from wtc.registry import Registry

DEFAULT_ROOT = Path(os.environ.get("WTC_DATA_ROOT", Path.home() / ".cache" / "wtc" / "data"))

# dataset name -> make(cfg, channels, resolution, num_classes) -> DataBundle; declared by
# import path, so the names are known (help, validation) without importing torch
DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
DATASETS.declare("fashion-mnist", "wtc.data.fashion_mnist:make")
DATASETS.declare("cifar10", "wtc.data.cifar10:make")
DATASETS.declare("imagefolder", "wtc.data.imagefolder:make")
DATASETS.declare("synthetic", "wtc.data.synthetic:make")


class DataConfig(BaseModel):
    """What data to train on and how to cut it; a `TrainConfig` holds one (its `data`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    data: str = Field(description="a dataset of DATASETS (`wtc search --help` lists them)")
    data_root: str | None = None
    fraction: float = Field(1.0, gt=0.0, le=1.0, description="stratified share of train images")
    classes: list[int] | None = Field(None, description="keep these classes, relabelled 0..k-1")
    resolution: int | None = Field(None, ge=4, le=MAX_RESOLUTION,
                                   description="resize inputs (default: the spec's)")
    val_split: float = Field(0.0, ge=0.0, lt=1.0, description="stratified hold-out from train")
    val_min_per_class: int = Field(0, ge=0, le=100_000, description="floor on the held-out "
                                   "images per class (drawn outside the training share)")
    augment: bool = True
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)
    eval_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH)
    workers: int = Field(0, ge=0, le=MAX_THREADS,
                         description="DataLoader workers (imagefolder only)")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    # synthetic set only (defaults follow the spec: channels, resolution, classes)
    synthetic_size: int = Field(2048, ge=1, le=MAX_SYNTHETIC_IMAGES)
    synthetic_test_size: int = Field(512, ge=1, le=MAX_SYNTHETIC_IMAGES)
    synthetic_channels: int | None = Field(None, ge=1, le=MAX_CHANNELS)
    synthetic_resolution: int | None = Field(None, ge=4, le=MAX_RESOLUTION)
    synthetic_classes: int | None = Field(None, ge=2, le=MAX_CLASSES)

    @field_validator("data")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASETS:
            names = [f"'{n}'" for n in DATASETS]
            expected = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": expected})
        return v

    @field_validator("classes")
    @classmethod
    def _classes_unique(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("give at least one class")
            if len(set(v)) != len(v):
                raise ValueError(f"classes repeat: {v}")
            if min(v) < 0 or max(v) >= MAX_CLASSES:
                raise ValueError(f"class indices are from 0 to {MAX_CLASSES - 1:,}")
        return v

    def as_given(self) -> dict[str, Any]:
        """The fields set explicitly, as JSON: what an experiment unit records (fields left at
        their defaults are left out, so a new field keeps every unit's hash)."""
        return self.model_dump(mode="json", exclude_unset=True)


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
