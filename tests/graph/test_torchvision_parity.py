"""Specs that mirror torchvision models have exactly their parameter counts and MACs."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import wtc

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("spec", "factory"), [
    ("specs/resnet18.yaml", torchvision.models.resnet18),
    ("specs/mobilenetv2.yaml", torchvision.models.mobilenet_v2),
    ("specs/resnet50.yaml", torchvision.models.resnet50),
])
def test_parameters_and_macs_equal_torchvision(spec, factory):
    graph = wtc.compile_spec(wtc.load_spec(spec))
    reference = factory().eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        reference(torch.zeros(1, 3, 224, 224))
    assert wtc.count_params(graph) == sum(p.numel() for p in reference.parameters())
    assert wtc.count_macs(graph) == counter.get_total_flops() // 2


def test_resnet18_state_dict_shapes_line_up_with_torchvision():
    ours = wtc.build_model(wtc.compile_spec(wtc.load_spec("specs/resnet18.yaml")), init=False)
    theirs = torchvision.models.resnet18()
    a = [tuple(v.shape) for v in ours.state_dict().values()]
    b = [tuple(v.shape) for v in theirs.state_dict().values()]
    assert sorted(a) == sorted(b)
