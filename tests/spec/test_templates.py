"""A user-defined template compiles, builds and passes the MACs check like a built-in."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import wtc
from wtc.spec import parse_spec

pytestmark = pytest.mark.unit

DENSE_SPEC = """
name: dense_tiny
input: {channels: 3, resolution: 12}
classes: 3
templates:
  dense:
    description: a DenseNet-style layer, its output concatenated to its input
    params: {growth: 4}
    nodes:
      - {name: bn, op: bn, inputs: input}
      - {name: act, op: act, fn: relu}
      - {name: conv, op: conv, out: growth, kernel: 3}
      - {name: cat, op: concat, inputs: [input, conv]}
  transition:
    nodes:
      - {name: conv, op: conv, out: width, kernel: 1}
      - {name: bn, op: bn}
      - {name: pool, op: avgpool, kernel: 2, stride: 2}
stem:
  - {block: conv_bn_act, width: 8}
stages:
  - {name: dense1, block: dense, depth: 3, growth: 4}
  - {name: trans1, block: transition, depth: 1, width: 10}
  - {name: dense2, block: dense, depth: 2, growth: 6}
head:
  - {block: classifier, dropout: 0.1}
"""


def check_against_torch(graph, groups=None):
    model = wtc.build_model(graph, groups).eval()
    res = graph.spec.input.resolution
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        y = model(torch.randn(2, graph.spec.input.channels, res, res))
    assert y.shape == (2, graph.spec.classes)
    assert counter.get_total_flops() // 4 == wtc.count_macs(graph, groups)
    assert sum(p.numel() for p in model.parameters()) == wtc.count_params(graph, groups)


def test_dense_template_with_concat():
    graph = wtc.compile_spec(parse_spec(DENSE_SPEC))
    # concatenation sums channels: 8 + 3 x 4 = 20 into the transition
    assert graph.node("trans1.block0.conv")["in_groups"] == (
        "stem.block0.conv", "dense1.block0.conv", "dense1.block1.conv", "dense1.block2.conv")
    check_against_torch(graph)
    groups = {g: graph.groups[g].base + i for i, g in enumerate(graph.free_groups)}
    check_against_torch(graph, groups)


def test_se_and_two_branch_templates():
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/se_concat_tiny.yaml"))
    check_against_torch(graph)
    groups = {g: 2 * graph.groups[g].base + 1 for g in graph.free_groups}
    check_against_torch(graph, groups)
