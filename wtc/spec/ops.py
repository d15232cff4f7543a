"""The op vocabulary of block templates, and how each op treats channels.

One table drives validation (which fields an op takes), channel analysis (which ops start a new
width group, which forward or tie them) and cost. The build layer maps the same names to torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from wtc.registry import Registry


class Channels(Enum):
    NEW = "new"  # output channels are a new free variable (conv, linear)
    SAME = "same"  # output channels are the input's (bn, act, pool, depthwise conv, ...)
    TIE = "tie"  # all inputs share one channel count, forwarded (add, mul)
    CONCAT = "concat"  # output channels are the sum of the inputs'


@dataclass(frozen=True)
class OpInfo:
    name: str
    channels: Channels
    fields: frozenset[str] = frozenset()  # optional fields besides name/op/inputs/when
    required: frozenset[str] = frozenset()
    min_inputs: int = 1
    max_inputs: int = 1
    spatial: bool = False  # has kernel/stride/padding


OPS: Registry[OpInfo] = Registry("op")
_SPATIAL = frozenset({"kernel", "stride", "padding"})
ACTIVATIONS = ("relu", "relu6", "silu", "hardswish", "sigmoid", "hardsigmoid", "gelu", "tanh")

for info in [
    OpInfo("conv", Channels.NEW, _SPATIAL | {"out", "bias"}, frozenset({"out"}), spatial=True),
    OpInfo("dwconv", Channels.SAME, _SPATIAL | {"bias"}, spatial=True),
    OpInfo("linear", Channels.NEW, frozenset({"out", "bias"}), frozenset({"out"})),
    OpInfo("bn", Channels.SAME),
    OpInfo("act", Channels.SAME, frozenset({"fn"}), frozenset({"fn"})),
    OpInfo("maxpool", Channels.SAME, _SPATIAL, frozenset({"kernel"}), spatial=True),
    OpInfo("avgpool", Channels.SAME, _SPATIAL, frozenset({"kernel"}), spatial=True),
    OpInfo("gap", Channels.SAME),  # global average pool, keeps N,C,1,1
    OpInfo("flatten", Channels.SAME),
    OpInfo("dropout", Channels.SAME, frozenset({"p"})),
    OpInfo("identity", Channels.SAME),
    OpInfo("add", Channels.TIE, min_inputs=2, max_inputs=8),
    OpInfo("mul", Channels.TIE, min_inputs=2, max_inputs=2),
    OpInfo("concat", Channels.CONCAT, min_inputs=2, max_inputs=8),
]:
    OPS.add(info.name, info)
