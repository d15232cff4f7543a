"""timm, the second real client of `wtc import` (an optional extra: skipped without it):
models of different families round-trip exactly (random init, no download)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import wtc
from wtc.graph import compile_spec, count_macs, count_params
from wtc.importer import import_model

pytestmark = pytest.mark.integration

timm = pytest.importorskip("timm")

# ResNet (with timm's deep stem and average-pool downsample), EfficientNet, MobileNetV3,
# RegNet (stage modules holding b1, b2, ...), ConvNeXt, DenseNet, DLA; all use timm's
# BatchNormAct2d (a batch norm with its activation inside)
FAMILIES = ["resnet18", "resnet26d", "efficientnet_b0", "mobilenetv3_small_050",
            "regnetx_002", "convnext_atto", "densenet121", "dla34"]


@pytest.mark.parametrize("name", FAMILIES)
def test_timm_models_round_trip_exactly(name):
    torch.manual_seed(0)
    module = timm.create_model(name, pretrained=False, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    imported = import_model(module, x, name=name)
    graph = compile_spec(imported.spec)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    assert count_params(graph) == sum(p.numel() for p in module.parameters())
    assert count_macs(graph) == counter.get_total_flops() // 2
    model = wtc.build_model(graph, init=False).eval()
    model.load_state_dict(imported.state_dict)
    probe = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (model(probe) - module(probe)).abs().max() < 1e-4


def test_timm_stage_modules_become_stages():
    module = timm.create_model("regnetx_002", pretrained=False, num_classes=10).eval()
    spec = import_model(module, torch.randn(1, 3, 64, 64), name="regnetx_002").spec
    assert [(s.name, s.depth) for s in spec.stages] == [("s1", 1), ("s2", 1), ("s3", 4),
                                                         ("s4", 7)]
