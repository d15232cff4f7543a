"""Projection: the cheap proxy of a spec a width search runs on before its widths are
transferred to the target (narrower, shallower, smaller images, fewer classes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wtc.graph import compile_spec, count_macs
from wtc.spec import expr
from wtc.spec.check import template_for
from wtc.spec.schema import Spec

# names whose value follows the network's widths; an `out` reading none of them is absolute
_RELATIVE = frozenset({"width", "in_channels", "classes"})


def project_spec(spec: Spec, *, width: float | None = None, depth: float | None = None,
                 depths: Sequence[int] | None = None, resolution: int | None = None,
                 classes: int | None = None, name: str | None = None) -> Spec:
    """The cheap proxy of a spec: narrower (`width`), shallower (`depth` multiplier or exact
    per-stage `depths`), smaller images (`resolution`), fewer `classes`. A thin wrapper over
    `Spec.scaled`; raises SpecError for impossible projections."""
    return spec.scaled(width=width, depth=depth, depths=depths, resolution=resolution,
                       classes=classes, name=name)


@dataclass(frozen=True)
class WidthEffect:
    """What a width multiplier does to a spec's MACs: `ratio` (projected / original, both at
    the same depth and resolution) against `expected` (the multiplier squared), and the
    channel counts the multiplier cannot reach (`absolute`: literal `out`s, or `out`s read
    from block parameters rather than `width`/`in_channels`)."""

    multiplier: float
    ratio: float
    absolute: tuple[str, ...]

    @property
    def expected(self) -> float:
        return self.multiplier ** 2

    @property
    def weak(self) -> bool:
        """The MACs moved less than half as far as the multiplier asks."""
        return abs(1 - self.ratio) < 0.5 * abs(1 - self.expected)


def width_effect(spec: Spec, multiplier: float) -> WidthEffect:
    """How far `spec.scaled(width=multiplier)` moves the MACs, and why it may not."""
    base = count_macs(compile_spec(spec))
    macs = count_macs(compile_spec(spec.scaled(width=multiplier)))
    return WidthEffect(multiplier, macs / base, tuple(absolute_channels(spec)))


def absolute_channels(spec: Spec) -> list[str]:
    """`block 'b' node 'n': out = 64` for every output channel count of the blocks a spec
    uses that no width multiplier changes (a literal, or read only from block parameters)."""
    used = dict.fromkeys(c.block for part in (spec.stem, spec.stages, spec.head) for c in part)
    found = []
    for block in used:
        for node in template_for(spec, block).nodes:
            value = node.out
            if value is None or (isinstance(value, str) and expr.names(value) & _RELATIVE):
                continue
            found.append(f"block '{block}' node '{node.name}': out = {value}")
    return found
