"""Built-in block templates, written in the same template language users write in their specs,
so built-ins and user blocks get the same validation, channel analysis, cost and build.

Names available in every template: `width`, `stride`, `in_channels`, `classes`, `index` (block
position in its stage), `depth` (blocks in the stage), `block_id` (position among all stage
blocks of the network, from 0) and `num_blocks` (how many there are; stochastic depth rates
grow with `block_id / num_blocks`), plus the template's own `params`.
"""

from __future__ import annotations

from typing import Any

from wtc.spec.catalog import BLOCKS, IMPLICIT_NAMES
from wtc.spec.schema import TemplateSpec

__all__ = ["BLOCKS", "IMPLICIT_NAMES"]


def _register(name: str, description: str, params: dict[str, Any], nodes: list[dict]) -> None:
    BLOCKS.add(name, TemplateSpec(params=params, nodes=nodes, description=description))


_PROJECT = "stride != 1 or in_channels != width"

_register("conv_bn_act", "conv → batch norm → activation", {"kernel": 3, "act": "relu"}, [
    {"name": "conv", "op": "conv", "out": "width", "kernel": "kernel", "stride": "stride"},
    {"name": "bn", "op": "bn"},
    {"name": "act", "op": "act", "fn": "act"},
])

_register("basic", "ResNet basic block (He et al. 2016): two 3x3 convs and a shortcut",
          {"act": "relu"}, [
    {"name": "conv1", "op": "conv", "out": "width", "kernel": 3, "stride": "stride"},
    {"name": "bn1", "op": "bn"},
    {"name": "act1", "op": "act", "fn": "act"},
    {"name": "conv2", "op": "conv", "out": "width", "kernel": 3},
    {"name": "bn2", "op": "bn"},
    {"name": "shortcut", "op": "conv", "inputs": ["input"], "out": "width", "kernel": 1,
     "stride": "stride", "when": _PROJECT},
    {"name": "shortcut_bn", "op": "bn", "when": _PROJECT},
    {"name": "add", "op": "add", "inputs": ["bn2", "shortcut_bn"]},
    {"name": "act2", "op": "act", "fn": "act"},
])

_BOTTLENECK_PROJECT = "stride != 1 or in_channels != width * expansion"
_register("bottleneck", "ResNet bottleneck (v1.5: the 3x3 conv strides); output width*expansion",
          {"expansion": 4, "act": "relu"}, [
    {"name": "conv1", "op": "conv", "out": "width", "kernel": 1},
    {"name": "bn1", "op": "bn"},
    {"name": "act1", "op": "act", "fn": "act"},
    {"name": "conv2", "op": "conv", "out": "width", "kernel": 3, "stride": "stride"},
    {"name": "bn2", "op": "bn"},
    {"name": "act2", "op": "act", "fn": "act"},
    {"name": "conv3", "op": "conv", "out": "width * expansion", "kernel": 1},
    {"name": "bn3", "op": "bn"},
    {"name": "shortcut", "op": "conv", "inputs": ["input"], "out": "width * expansion",
     "kernel": 1, "stride": "stride", "when": _BOTTLENECK_PROJECT},
    {"name": "shortcut_bn", "op": "bn", "when": _BOTTLENECK_PROJECT},
    {"name": "add", "op": "add", "inputs": ["bn3", "shortcut_bn"]},
    {"name": "act3", "op": "act", "fn": "act"},
])

_register("inverted_residual",
          "MobileNetV2 inverted residual: 1x1 expand, depthwise, linear 1x1 projection",
          {"expansion": 6, "kernel": 3, "act": "relu6"}, [
    {"name": "expand", "op": "conv", "out": "in_channels * expansion", "kernel": 1,
     "when": "expansion != 1"},
    {"name": "expand_bn", "op": "bn", "when": "expansion != 1"},
    {"name": "expand_act", "op": "act", "fn": "act", "when": "expansion != 1"},
    {"name": "dw", "op": "dwconv", "kernel": "kernel", "stride": "stride"},
    {"name": "dw_bn", "op": "bn"},
    {"name": "dw_act", "op": "act", "fn": "act"},
    {"name": "project", "op": "conv", "out": "width", "kernel": 1},
    {"name": "project_bn", "op": "bn"},
    {"name": "add", "op": "add", "inputs": ["project_bn", "input"],
     "when": "stride == 1 and in_channels == width"},
])

_register("plain", "VGG-style conv-bn-act; a stride is a max pool in front of the conv",
          {"kernel": 3, "act": "relu"}, [
    {"name": "pool", "op": "maxpool", "kernel": "stride", "stride": "stride",
     "when": "stride != 1"},
    {"name": "conv", "op": "conv", "out": "width", "kernel": "kernel"},
    {"name": "bn", "op": "bn"},
    {"name": "act", "op": "act", "fn": "act"},
])

_register("maxpool", "max pooling (the ResNet stem's 3x3/2)", {"kernel": 3}, [
    {"name": "pool", "op": "maxpool", "kernel": "kernel", "stride": "stride"},
])

_register("classifier", "global average pool → dropout → linear to the classes",
          {"dropout": 0.0}, [
    {"name": "pool", "op": "gap"},
    {"name": "flatten", "op": "flatten"},
    {"name": "dropout", "op": "dropout", "p": "dropout", "when": "dropout > 0"},
    {"name": "fc", "op": "linear", "out": "classes", "bias": True},
])
