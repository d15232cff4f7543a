"""Projection: the cheap proxy of a spec a width search runs on before its widths are
transferred to the target (narrower, shallower, smaller images, fewer classes)."""

from __future__ import annotations

from collections.abc import Sequence

from wtc.spec.schema import Spec


def project_spec(spec: Spec, *, width: float | None = None, depth: float | None = None,
                 depths: Sequence[int] | None = None, resolution: int | None = None,
                 classes: int | None = None, name: str | None = None) -> Spec:
    """The cheap proxy of a spec: narrower (`width`), shallower (`depth` multiplier or exact
    per-stage `depths`), smaller images (`resolution`), fewer `classes`. A thin wrapper over
    `Spec.scaled`; raises SpecError for impossible projections."""
    return spec.scaled(width=width, depth=depth, depths=depths, resolution=resolution,
                       classes=classes, name=name)
