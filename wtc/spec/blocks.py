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

_register("classifier", "global average pool → [layer norm] → dropout → linear to the classes",
          {"dropout": 0.0, "layer_norm": False}, [
    {"name": "pool", "op": "gap"},
    {"name": "norm", "op": "ln", "when": "layer_norm"},
    {"name": "flatten", "op": "flatten"},
    {"name": "dropout", "op": "dropout", "p": "dropout", "when": "dropout > 0"},
    {"name": "fc", "op": "linear", "out": "classes", "bias": True},
])

_register("resnext", "ResNeXt bottleneck (Xie et al. 2017; torchvision's, the grouped 3x3 conv "
          "strides): `cardinality` groups of width*base_width/64 channels at base widths, the "
          "group width fixed when widths change; output width*expansion",
          {"cardinality": 32, "base_width": 4, "expansion": 4, "act": "relu"}, [
    {"name": "conv1", "op": "conv", "out": "max(1, width * base_width // 64) * cardinality",
     "kernel": 1},
    {"name": "bn1", "op": "bn"},
    {"name": "act1", "op": "act", "fn": "act"},
    {"name": "conv2", "op": "gconv", "group_width": "max(1, width * base_width // 64)",
     "kernel": 3,
     "stride": "stride"},
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

# RegNet's bottleneck width: width·bottleneck, rounded to a multiple of the group width (which
# is at most the bottleneck width), as torchvision adjusts widths to their groups
_WB = "int(round(width * bottleneck))"
_GW = f"min(group_width, {_WB})"
_WB_FIT = f"max(1, int(round({_WB} / {_GW}))) * {_GW}"
_register("regnet", "RegNet X/Y block (Radosavovic et al. 2020): 1x1, grouped 3x3 at a fixed "
          "group width (strides), [squeeze-excite when se_ratio > 0], 1x1; output width",
          {"bottleneck": 1.0, "group_width": 16, "se_ratio": 0.0, "act": "relu"}, [
    {"name": "a", "op": "conv", "out": _WB_FIT, "kernel": 1},
    {"name": "a_bn", "op": "bn"},
    {"name": "a_act", "op": "act", "fn": "act"},
    {"name": "b", "op": "gconv", "group_width": _GW, "kernel": 3, "stride": "stride"},
    {"name": "b_bn", "op": "bn"},
    {"name": "b_act", "op": "act", "fn": "act"},
    {"name": "se_pool", "op": "gap", "when": "se_ratio > 0"},
    {"name": "se_reduce", "op": "conv", "out": "max(1, int(round(se_ratio * in_channels)))",
     "kernel": 1, "bias": True, "when": "se_ratio > 0"},
    {"name": "se_act", "op": "act", "fn": "act", "when": "se_ratio > 0"},
    {"name": "se_expand", "op": "conv", "out": _WB_FIT, "kernel": 1, "bias": True,
     "when": "se_ratio > 0"},
    {"name": "se_gate", "op": "act", "fn": "sigmoid", "when": "se_ratio > 0"},
    {"name": "se_mul", "op": "mul", "inputs": ["b_act", "se_gate"], "when": "se_ratio > 0"},
    {"name": "c", "op": "conv", "out": "width", "kernel": 1},
    {"name": "c_bn", "op": "bn"},
    {"name": "shortcut", "op": "conv", "inputs": ["input"], "out": "width", "kernel": 1,
     "stride": "stride", "when": _PROJECT},
    {"name": "shortcut_bn", "op": "bn", "when": _PROJECT},
    {"name": "add", "op": "add", "inputs": ["c_bn", "shortcut_bn"]},
    {"name": "act", "op": "act", "fn": "act"},
])

_DOWN = "stride != 1"
_SAME = "stride == 1"
_register("shuffle_unit", "ShuffleNetV2 unit (Ma et al. 2018): stride 1 splits the channels in "
          "halves and transforms one; stride 2 transforms the input twice; concat, shuffle. "
          "The output's halves are one width group (width/2 channels each)", {"act": "relu"}, [
    {"name": "b1_dw", "op": "dwconv", "inputs": ["input"], "kernel": 3, "stride": "stride",
     "when": _DOWN},
    {"name": "b1_bn1", "op": "bn", "when": _DOWN},
    {"name": "b1_conv", "op": "conv", "out": "width // 2", "kernel": 1, "when": _DOWN},
    {"name": "b1_bn2", "op": "bn", "when": _DOWN},
    {"name": "b1_act", "op": "act", "fn": "act", "when": _DOWN},
    {"name": "left", "op": "split", "inputs": ["b1_act"], "chunks": 2, "chunk": 0,
     "when": _SAME},
    {"name": "right", "op": "split", "inputs": ["input"], "chunks": 2, "chunk": 1,
     "when": _SAME},
    {"name": "b2_conv1", "op": "conv", "out": "width // 2", "kernel": 1},
    {"name": "b2_bn1", "op": "bn"},
    {"name": "b2_act1", "op": "act", "fn": "act"},
    {"name": "b2_dw", "op": "dwconv", "kernel": 3, "stride": "stride"},
    {"name": "b2_bn2", "op": "bn"},
    {"name": "b2_conv2", "op": "conv", "out": "width // 2", "kernel": 1},
    {"name": "b2_bn3", "op": "bn"},
    {"name": "b2_act2", "op": "act", "fn": "act"},
    {"name": "cat", "op": "concat", "inputs": ["left", "b2_act2"]},
    {"name": "shuffle", "op": "shuffle", "groups": 2},
])

_RESIDUAL = "stride == 1 and in_channels == width"
_register("mbconv", "EfficientNet MBConv (Tan & Le 2019): 1x1 expand, depthwise, "
          "squeeze-excite, linear 1x1 projection, stochastic depth on the residual branch "
          "(rate drop_path · block_id / num_blocks)",
          {"expansion": 6, "kernel": 3, "se_ratio": 0.25, "drop_path": 0.0, "act": "silu"}, [
    {"name": "expand", "op": "conv", "out": "in_channels * expansion", "kernel": 1,
     "when": "expansion != 1"},
    {"name": "expand_bn", "op": "bn", "when": "expansion != 1"},
    {"name": "expand_act", "op": "act", "fn": "act", "when": "expansion != 1"},
    {"name": "dw", "op": "dwconv", "kernel": "kernel", "stride": "stride"},
    {"name": "dw_bn", "op": "bn"},
    {"name": "dw_act", "op": "act", "fn": "act"},
    {"name": "se_pool", "op": "gap", "when": "se_ratio > 0"},
    {"name": "se_reduce", "op": "conv", "out": "max(1, int(in_channels * se_ratio))",
     "kernel": 1, "bias": True, "when": "se_ratio > 0"},
    {"name": "se_act", "op": "act", "fn": "act", "when": "se_ratio > 0"},
    {"name": "se_expand", "op": "conv", "out": "in_channels * expansion", "kernel": 1,
     "bias": True, "when": "se_ratio > 0"},
    {"name": "se_gate", "op": "act", "fn": "sigmoid", "when": "se_ratio > 0"},
    {"name": "se_mul", "op": "mul", "inputs": ["dw_act", "se_gate"], "when": "se_ratio > 0"},
    {"name": "project", "op": "conv", "out": "width", "kernel": 1},
    {"name": "project_bn", "op": "bn"},
    {"name": "drop", "op": "droppath", "p": "drop_path * block_id / num_blocks",
     "when": _RESIDUAL},
    {"name": "add", "op": "add", "inputs": ["drop", "input"], "when": _RESIDUAL},
])

_register("patchify", "a non-overlapping stride x stride conv (with bias) and a layer norm: "
          "ConvNeXt's stem", {}, [
    {"name": "conv", "op": "conv", "out": "width", "kernel": "stride", "stride": "stride",
     "padding": 0, "bias": True},
    {"name": "norm", "op": "ln"},
])

_CN_DOWN = "stride != 1 or in_channels != width"
_register("convnext", "ConvNeXt block (Liu et al. 2022): [layer norm + stride x stride conv "
          "when the stage downsamples], 7x7 depthwise, layer norm, 1x1 expand, GELU, 1x1, "
          "layer scale, stochastic depth (rate drop_path · block_id / (num_blocks - 1))",
          {"expansion": 4, "kernel": 7, "layer_scale": 1e-6, "drop_path": 0.0}, [
    {"name": "down_norm", "op": "ln", "when": _CN_DOWN},
    {"name": "down", "op": "conv", "out": "width", "kernel": "stride", "stride": "stride",
     "padding": 0, "bias": True, "when": _CN_DOWN},
    {"name": "dw", "op": "dwconv", "kernel": "kernel", "bias": True},
    {"name": "norm", "op": "ln"},
    {"name": "pw1", "op": "conv", "out": "width * expansion", "kernel": 1, "bias": True},
    {"name": "act", "op": "act", "fn": "gelu"},
    {"name": "pw2", "op": "conv", "out": "width", "kernel": 1, "bias": True},
    {"name": "scale", "op": "scale", "init": "layer_scale"},
    {"name": "drop", "op": "droppath", "p": "drop_path * block_id / max(1, num_blocks - 1)"},
    {"name": "add", "op": "add", "inputs": ["drop", "down"]},
])
