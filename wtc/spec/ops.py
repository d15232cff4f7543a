"""The op vocabulary of block templates, and how each op treats channels.

One table drives validation (which fields an op takes), channel analysis (which ops start a new
width group, which forward, tie, split or constrain them) and the MorphNet gates. Cost lives in
`wtc.graph.cost` (one entry per op), the torch module in the build layer (one entry per op);
both refuse to start if an op here has no entry there.

Grouped convolutions come in the two forms CNN families use, and differ in what stays fixed
when a width search changes the channels:

- `conv` with `groups: g` (ShuffleNet v1, any fixed cardinality): the number of groups is fixed;
  its input and output channels must stay multiples of g.
- `gconv` with `group_width: w` (ResNeXt, RegNet): the channels per group are fixed and the
  number of groups follows the width (channels / w), as `dwconv` (w = 1) does. Like `dwconv` it
  keeps its channels (in = out, one width group), which must stay multiples of w.

The channel analysis records each such constraint on the width group (`Group.multiple`), and
every rounding (uniform scaling, search, transfer) rounds that group to a multiple of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from wtc.registry import Registry


class Channels(Enum):
    NEW = "new"  # output channels are a new free variable (conv, linear)
    SAME = "same"  # output channels are the input's (bn, act, pool, ...)
    GROUPED = "grouped"  # the input's, each part a multiple of the group width (dwconv, gconv)
    TIE = "tie"  # all inputs share one channel count, forwarded (add, mul)
    CONCAT = "concat"  # output channels are the sum of the inputs'
    CHUNK = "chunk"  # one of k equal chunks of the input; the k chunks are tied (split)
    MIX = "mix"  # the input's channels interleaved; all its parts become one group (shuffle)


@dataclass(frozen=True)
class OpInfo:
    name: str
    channels: Channels
    fields: frozenset[str] = frozenset()  # optional fields besides name/op/inputs/when
    required: frozenset[str] = frozenset()
    min_inputs: int = 1
    max_inputs: int = 1
    spatial: bool = False  # has kernel/stride/padding
    norm: bool = False  # a per-channel scale γ a MorphNet-style search reads as a gate
    description: str = ""


OPS: Registry[OpInfo] = Registry("op")
_SPATIAL = frozenset({"kernel", "stride", "padding"})
_CONV = _SPATIAL | {"dilation", "bias"}
ACTIVATIONS = ("relu", "relu6", "silu", "hardswish", "sigmoid", "hardsigmoid", "gelu", "tanh",
               "mish", "elu", "leaky_relu")

for info in [
    OpInfo("conv", Channels.NEW, _CONV | {"out", "groups"}, frozenset({"out"}), spatial=True,
           description="convolution; `groups` g keeps g groups at every width"),
    OpInfo("gconv", Channels.GROUPED, _CONV | {"group_width", "out"}, frozenset({"group_width"}),
           spatial=True, description="grouped convolution at a fixed group width; keeps its "
           "channels (groups = channels / group_width)"),
    OpInfo("dwconv", Channels.GROUPED, _CONV, spatial=True,
           description="depthwise convolution (group width 1)"),
    OpInfo("linear", Channels.NEW, frozenset({"out", "bias"}), frozenset({"out"})),
    OpInfo("bn", Channels.SAME, frozenset({"eps", "momentum"}), norm=True,
           description="batch norm; `momentum` of the running statistics (torch's, 0.1)"),
    OpInfo("ln", Channels.SAME, frozenset({"eps"}), norm=True,
           description="layer norm over the channels of each position (ConvNeXt)"),
    OpInfo("act", Channels.SAME, frozenset({"fn"}), frozenset({"fn"})),
    OpInfo("scale", Channels.SAME, frozenset({"init"}),
           description="learnable per-channel scale (layer scale), initialised to `init`"),
    OpInfo("droppath", Channels.SAME, frozenset({"p"}),
           description="stochastic depth: drops the whole branch per sample while training"),
    OpInfo("maxpool", Channels.SAME, _SPATIAL | {"ceil_mode"}, frozenset({"kernel"}),
           spatial=True, description="max pooling; `ceil_mode` rounds the output size up"),
    OpInfo("avgpool", Channels.SAME, _SPATIAL | {"ceil_mode"}, frozenset({"kernel"}),
           spatial=True, description="average pooling; `ceil_mode` rounds the output size up"),
    OpInfo("gap", Channels.SAME),  # global average pool, keeps N,C,1,1
    OpInfo("adaptive_avgpool", Channels.SAME, frozenset({"size"}), frozenset({"size"}),
           description="average pool to a fixed `size` x `size` map at any input resolution "
           "(the VGG/AlexNet head)"),
    OpInfo("flatten", Channels.SAME,
           description="N,C,H,W → N,C·H·W; a following linear reads the H·W positions of "
           "every channel"),
    OpInfo("dropout", Channels.SAME, frozenset({"p"})),
    OpInfo("identity", Channels.SAME),
    OpInfo("add", Channels.TIE, min_inputs=2, max_inputs=8),
    OpInfo("mul", Channels.TIE, min_inputs=2, max_inputs=2),
    OpInfo("concat", Channels.CONCAT, min_inputs=2, max_inputs=8),
    OpInfo("split", Channels.CHUNK, frozenset({"chunks", "chunk"}), frozenset({"chunk"}),
           description="chunk `chunk` (from 0) of `chunks` equal channel chunks (default 2)"),
    OpInfo("shuffle", Channels.MIX, frozenset({"groups"}), frozenset({"groups"}),
           description="channel shuffle over `groups` groups (ShuffleNet)"),
]:
    OPS.add(info.name, info)

OP_NAMES = tuple(OPS.names())
# the fields of a template node that hold a literal or an expression (all but name, op,
# inputs and fn)
EXPR_FIELDS = ("out", "kernel", "stride", "padding", "dilation", "groups", "group_width",
               "chunks", "chunk", "bias", "p", "eps", "init", "when", "size", "ceil_mode",
               "momentum")
