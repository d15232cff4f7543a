"""The sections of an experiment plan (target, proxies, search, curve) as strict pydantic
models: every key is known, every number finite and bounded (`wtc.limits`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from wtc.experiment.plan_fields import Depth, Seed, Strict
from wtc.limits import MAX_CHANNELS, MAX_CLASSES, MAX_DEPTH, MAX_RESOLUTION


class TargetSection(Strict):
    spec: str = Field(min_length=1, description="the target spec (YAML path)")
    macs: str | float | int = Field("1.0x", description="the target in the unit of `cost`: "
                                    "0.5x, 41M or 4.1e7 MACs; 3ms, 250us for latency")
    cost: str | None = Field(None, description="macs (default) | params | latency:TABLE")


class ProxySection(Strict):
    width: float | None = Field(None, gt=0.0, le=MAX_CHANNELS, description="width multiplier")
    depth: float | None = Field(None, gt=0.0, le=MAX_DEPTH, description="depth multiplier")
    depths: list[Depth] | None = Field(None, description="blocks per stage")
    resolution: int | None = Field(None, ge=4, le=MAX_RESOLUTION, description="input resolution")
    fraction: float | None = Field(None, gt=0.0, le=1.0, description="share of the images")
    classes: int | None = Field(None, ge=2, le=MAX_CLASSES, description="keep the first k classes")
    stacking: list[str] | None = Field(None, description="rules for this proxy (depth only)")
    search_epochs: float | None = Field(
        None, gt=0.0, le=1000.0, description="multiplies every method's `epochs` on this proxy "
        "(spend a cheap proxy's savings on a longer search)")
    batch_scale: int | None = Field(
        None, ge=1, le=64, description="batches this many times larger on this proxy, every "
        "method's learning rate scaled alike")

    @model_validator(mode="after")
    def _something(self) -> ProxySection:
        if all(getattr(self, k) is None for k in
               ("width", "depth", "depths", "resolution", "fraction", "classes")):
            raise ValueError("a proxy needs at least one of width, depth, depths, resolution, "
                             "fraction, classes")
        return self

    def projection(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items()
                if v is not None and k not in ("stacking", "search_epochs", "batch_scale")}


class SearchSection(Strict):
    seed: Seed = 0
    fraction: float = Field(1.0, gt=0.0, le=1.0, description="share of the training images "
                            "every search sees (proxies multiply it)")
    val_split: float = Field(0.1, gt=0.0, lt=1.0, description="held-out share of the training "
                             "images for every search decision (the test set is never read)")
    val_min_per_class: int = Field(
        100, ge=0, le=100_000, description="floor on every search's held-out images per class, "
        "drawn outside its training share (a proxy on a small data fraction still decides on "
        "enough images); 0: no floor")


class CurveSection(Strict):
    """A search-length curve: every method searched again at each of `epochs`, on each of
    `sources` (`target` and/or proxy names), so the report shows how long a search must be
    before its widths stop moving."""

    epochs: list[int] = Field(min_length=1, description="the methods' `epochs` of each point")
    sources: list[str] = Field(default_factory=lambda: ["target"],
                               description="target and/or proxy names")

    @field_validator("epochs")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(e < 1 or e > 1000 for e in v) or len(set(v)) != len(v):
            raise ValueError(f"epochs must be distinct integers in 1..1000, got {v}")
        return sorted(v)
