"""Training options (`TrainConfig`: the data it holds, optimizer, runtime) and what a run
returns.

A `TrainConfig` holds its `DataConfig` (`cfg.data`) rather than being one. Users still write
one flat mapping (a `--config` file, a plan's `train:`, keyword arguments: `data: fashion-mnist,
batch_size: 128, lr: 0.1`); it is split into the two once, when it is validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from wtc.data import DataConfig
from wtc.errors import ConfigError
from wtc.limits import MAX_EPOCHS, MAX_THREADS
from wtc.options import read_yaml_mapping


class TrainConfig(BaseModel):
    """Everything a training run needs besides the model: data (`data`, a `DataConfig`),
    optimizer, runtime."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    data: DataConfig
    epochs: int = Field(1, ge=1, le=MAX_EPOCHS)
    lr: float = Field(0.1, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0.0, le=MAX_EPOCHS)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="autocast precision: auto = bf16 where the hardware runs it "
        "natively (CPU with AVX-512 BF16/AMX, CUDA with bf16), else fp32")
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="NHWC tensors: auto = on for CPU and CUDA")
    compile: bool | Literal["auto"] = Field(
        "auto", description="torch.compile the training forward (inductor): auto = off "
        "(measured: no gain on CPU, long compile); true compiles where the step's shapes "
        "are static (not a supernet's sandwich steps)")
    threads: int | None = Field(None, ge=1, le=MAX_THREADS,
                                description="CPU threads (default: cores per rank); set by "
                                "the process's entry point (`set_process_threads`)")
    eval_every: int = Field(1, ge=1, le=MAX_EPOCHS,
                            description="test-set evaluation every N epochs (and last)")
    out: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_amp(cls, values: Any) -> Any:
        if isinstance(values, dict) and ("amp" in values or "amp_dtype" in values):
            raise ValueError("amp and amp_dtype were replaced by precision: auto | fp32 | bf16 "
                             "| fp16 (amp: false is precision: fp32)")
        return values

    @model_validator(mode="before")
    @classmethod
    def _split_flat(cls, values: Any) -> Any:
        """A flat mapping (the dataset name under `data`, data and training keys side by
        side) split into the nested form; data keys beside a nested `data` mapping (what
        `model_dump` gives) go into it. A DataConfig under `data` is taken as it is."""
        if not isinstance(values, dict) or isinstance(values.get("data"), DataConfig):
            return values
        inner = values.get("data")
        nested = dict(inner) if isinstance(inner, dict) else (
            {"data": inner} if "data" in values else {})
        own = {k: v for k, v in values.items() if k not in DataConfig.model_fields}
        data = {k: v for k, v in values.items() if k in DataConfig.model_fields and k != "data"}
        return {**own, "data": {**nested, **data}}

    def flat(self) -> dict[str, Any]:
        """Every option in one flat mapping (data keys beside training keys), as a user writes
        them and as checkpoints record them."""
        return {**self.data.model_dump(), **self.model_dump(exclude={"data"})}

    def as_given(self) -> dict[str, Any]:
        """The options set explicitly, flat, as JSON: what an experiment unit records (options
        left at their defaults are left out, so a new option keeps every unit's hash)."""
        return {**self.data.as_given(),
                **self.model_dump(mode="json", exclude_unset=True, exclude={"data"})}

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """A YAML file (optional) with overrides on top; None overrides are ignored. An
        error in an override is blamed on its command-line option (`--lr`), not the file."""
        values: dict[str, Any] = {}
        if path is not None:
            values.update(read_yaml_mapping(path, "training config",
                                            "a mapping of training options"))
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        try:
            return cls(**values)
        except ValidationError as e:
            errors = [(flat_loc(er["loc"]), er["msg"]) for er in e.errors()]
            if all(loc and loc[0] in given for loc, _ in errors):
                problems = "; ".join(f"--{str(loc[0]).replace('_', '-')}: {msg}"
                                     for loc, msg in errors)
                raise ConfigError(f"bad command-line option: {problems}") from None
            src = f" in {path}" if path else ""
            problems = "; ".join(f"{'.'.join(str(x) for x in loc) or 'config'}: {msg}"
                                 for loc, msg in errors)
            raise ConfigError(f"bad training options{src}: {problems}") from None


def flat_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Where a `TrainConfig` validation error is, as the user wrote the options (flat): a data
    key's `("data", "fraction")` is `("fraction",)`."""
    if len(loc) > 1 and loc[0] == "data" and loc[1] in DataConfig.model_fields:
        return tuple(loc[1:])
    return tuple(loc)


@dataclass
class TrainResult:
    """What a run produced; `model` is the trained, unwrapped module."""

    model: nn.Module
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    out_dir: Path | None = None
    checkpoint: Path | None = None
    top1: float = field(init=False)
    train_macs: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.top1 = self.summary.get("top1", float("nan"))
        self.train_macs = self.summary.get("train_macs")
