"""What a search runs on (`Source`: the target or one proxy of it) and the runtime settings
units carry.

The precision and memory format wtc ran with before they were settings (fp32, NCHW) are left
out of the unit parameters and the plan hash, so plans that pin them keep their ledgers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wtc.graph import StageGraph
from wtc.spec import Spec, dump_spec

if TYPE_CHECKING:
    from wtc.data import DataConfig

LEGACY_RUNTIME = {"precision": "fp32", "channels_last": False}


def legacy_free(runtime: dict[str, Any]) -> dict[str, Any]:
    """`runtime` without the settings units had before precision existed (fp32 NCHW)."""
    if all(runtime.get(k) == v for k, v in LEGACY_RUNTIME.items()):
        return {}
    return dict(runtime)


@dataclass(frozen=True)
class Source:
    """A spec a search runs on: the target itself or one proxy of it."""

    name: str  # "target" or the proxy's name
    spec: Spec
    graph: StageGraph
    target_macs: int  # the search's MACs target on this spec (same share of its base MACs)
    data: DataConfig  # the data of its searches (seeded by the search)
    projection: dict[str, Any] = field(default_factory=dict)
    stacking: tuple[str, ...] = ("last",)  # transfer rules (one when depths are equal)
    search_epochs: float = 1.0  # multiplies the methods' `epochs` on this source
    lr_scale: float = 1.0  # multiplies the methods' learning rates (with a larger batch)

    def settings(self, method_settings: dict[str, Any]) -> dict[str, Any]:
        """A method's settings for searches on this source: epochs scaled by `search_epochs`,
        the weight learning rates (`lr`, MorphNet's `score_lr`) by `lr_scale` (the linear
        scaling rule for a batch `lr_scale` times larger)."""
        out = dict(method_settings)
        if self.search_epochs != 1.0 and "epochs" in out:
            out["epochs"] = max(1, round(out["epochs"] * self.search_epochs))
        if self.lr_scale != 1.0:
            for key in ("lr", "score_lr"):
                if key in out:
                    out[key] = out[key] * self.lr_scale
        return out

    @property
    def is_target(self) -> bool:
        return self.name == "target"

    @property
    def spec_text(self) -> str:
        return dump_spec(self.spec)
