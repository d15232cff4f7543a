"""The spec-language gaps a new user hit writing real networks by hand (issue 19): adaptive
average pooling, ceil-mode pooling, what a removed node forwards, make_divisible/ceil/floor in
expressions, per-block parameter lists, bn momentum, an unused width, a width multiplier that
cannot reach absolute channels, and a stale `macs.achieved`."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import wtc
from wtc.errors import SpecError
from wtc.graph import compile_spec, count_macs, count_params
from wtc.spec import expr
from wtc.spec.load import parse_spec
from wtc.widths import save_widths, uniform_widths

pytestmark = pytest.mark.unit

HEAD = """
classes: 10
stem:
  - {block: conv_bn_act, width: 8, stride: 2}
"""


def _spec(body: str, resolution: int = 32) -> wtc.Spec:
    return parse_spec(f"name: t\ninput: {{channels: 3, resolution: {resolution}}}\n" + body)


def _torch_macs(model: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


POOL_HEAD = HEAD + """
templates:
  vgg_head:
    params: {size: 3, hidden: 16}
    nodes:
      - {name: pool, op: adaptive_avgpool, size: size}
      - {name: flatten, op: flatten}
      - {name: fc1, op: linear, out: hidden, bias: true}
      - {name: act, op: act, fn: relu}
      - {name: fc2, op: linear, out: classes, bias: true}
  ceil_pool:
    params: {kernel: 3}
    nodes:
      - {name: pool, op: maxpool, kernel: kernel, stride: 2, padding: 0, ceil_mode: true}
      - {name: conv, op: conv, out: width, kernel: 3}
stages:
  - {name: s1, block: ceil_pool, width: 8}
head:
  - {block: vgg_head}
"""


def _reference(graph) -> nn.Module:
    """The same network written in torch by hand (8 → 8 channels, a 3x3 adaptive pool)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(3, 2, 0, ceil_mode=True), nn.Conv2d(8, 8, 3, 1, 1, bias=False),
        nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(72, 16), nn.ReLU(), nn.Linear(16, 10))


@pytest.mark.parametrize("resolution", [24, 31, 45, 64])
def test_adaptive_avgpool_and_ceil_mode_match_torch_at_every_resolution(resolution):
    graph = compile_spec(_spec(POOL_HEAD, resolution))
    ours = wtc.build_model(graph).eval()
    ref = _reference(graph).eval()
    with torch.no_grad():
        for (_, a), (_, b) in zip(ours.state_dict().items(), ref.state_dict().items(),
                                  strict=True):
            b.copy_(a)
    x = torch.randn(2, 3, resolution, resolution)
    assert count_params(graph) == sum(p.numel() for p in ref.parameters())
    assert count_macs(graph) == _torch_macs(ref, x[:1])
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)
    pool = graph.node("s1.block0.pool")
    side = resolution // 2 + resolution % 2  # after the stride-2 stem
    assert pool["out_hw"][0] == ref[3](torch.zeros(1, 1, side, side)).shape[-1]
    assert graph.node("head.block0.pool")["out_hw"] == (3, 3)


def test_ceil_mode_changes_the_size_and_the_macs():
    floor = _spec(POOL_HEAD.replace("ceil_mode: true", "ceil_mode: false"), 32)
    ceil = _spec(POOL_HEAD, 32)
    g_floor, g_ceil = compile_spec(floor), compile_spec(ceil)
    assert g_floor.node("s1.block0.pool")["out_hw"] == (7, 7)
    assert g_ceil.node("s1.block0.pool")["out_hw"] == (8, 8)
    assert count_macs(g_ceil) > count_macs(g_floor)


def test_the_supernet_runs_a_linear_after_a_larger_flatten():
    from wtc.nn.slimmable import Supernet

    graph = compile_spec(_spec(POOL_HEAD, 32))
    net = Supernet(graph).eval()
    w = {g: max(1, graph.groups[g].base // 2) for g in graph.free_groups}
    net.set_widths(w)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), net.extract(w)(x), atol=1e-5)


PREACT = HEAD + """
templates:
  preact:
    nodes:
      - {name: bn1, op: bn}
      - {name: act1, op: act, fn: relu}
      - {name: conv1, op: conv, out: width, kernel: 3, stride: stride}
      - {name: bn2, op: bn}
      - {name: act2, op: act, fn: relu}
      - {name: conv2, op: conv, out: width, kernel: 3}
      - {name: shortcut, op: conv, inputs: [act1], out: width, kernel: 1, stride: stride,
         when: "stride != 1 or in_channels != width"FORWARDS}
      - {name: add, op: add, inputs: [conv2, shortcut]}
stages:
  - {name: s1, block: preact, width: 8, depth: 2}
  - {name: s2, block: preact, width: 16, stride: 2}
head:
  - {block: classifier}
"""


def test_a_removed_shortcut_that_would_forward_the_activation_is_refused():
    with pytest.raises(SpecError, match="forwards: input"):
        compile_spec(_spec(PREACT.replace("FORWARDS", "")))


def test_forwards_input_builds_the_pre_activation_identity_shortcut():
    graph = compile_spec(_spec(PREACT.replace("FORWARDS", ", forwards: input")))
    assert graph.node("s1.block0.add")["inputs"] == ["s1.block0.conv2", "stem.block0.act"]
    assert graph.node("s2.block0.add")["inputs"] == ["s2.block0.conv2", "s2.block0.shortcut"]
    model = wtc.build_model(graph).eval()
    block = model.stages[0].blocks[0]
    x = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        inner = block.conv2(block.act2(block.bn2(block.conv1(block.act1(block.bn1(x))))))
        assert torch.allclose(block(x), inner + x, atol=1e-6)
    # stating the activation explicitly is allowed too: the user has said what they mean
    compile_spec(_spec(PREACT.replace("FORWARDS", ", forwards: act1")))


def test_forwards_needs_a_when_and_an_earlier_node():
    with pytest.raises(SpecError, match="needs a 'when'"):
        compile_spec(_spec(PREACT.replace("FORWARDS", "").replace(
            "- {name: add, op: add,", "- {name: add, op: add, forwards: conv2,")))
    with pytest.raises(SpecError, match="not 'input' or an earlier node"):
        compile_spec(_spec(PREACT.replace("FORWARDS", ", forwards: add")))


def test_make_divisible_ceil_and_floor_in_expressions():
    env = {"width": 30, "e": 0.25}
    assert expr.evaluate("make_divisible(width * e, 8)", env) == 8
    assert expr.evaluate("make_divisible(240 // 4, 8)", env) == 64
    assert expr.evaluate("make_divisible(width, 8, 16)", env) == 32
    assert expr.evaluate("ceil(width / 4)", env) == 8
    assert expr.evaluate("floor(width / 4)", env) == 7
    with pytest.raises(expr.ExprError, match="takes 2 to 3 argument"):
        expr.parse("make_divisible(width)")
    with pytest.raises(expr.ExprError, match="divisor must be a whole number"):
        expr.evaluate("make_divisible(width, 0)", env)
    with pytest.raises(expr.ExprError, match="beyond"):
        expr.evaluate("ceil(width * 100000000 * 100000000)", env)


LISTS = HEAD + """
stages:
  - {name: s1, block: inverted_residual, width: 8, depth: 3, expansion: EXPANSIONS,
     kernel: [3, 5, 5]}
head:
  - {block: classifier}
"""


def test_per_block_parameter_lists_are_indexed_by_block():
    graph = compile_spec(_spec(LISTS.replace("EXPANSIONS", "[1, 4, 6]")))
    assert "s1.block0.expand" not in graph.nx  # expansion 1: no expand conv
    assert graph.node("s1.block1.expand")["out"] == 32
    assert graph.node("s1.block2.expand")["out"] == 48
    assert [graph.node(f"s1.block{i}.dw")["kernel"] for i in range(3)] == [3, 5, 5]
    model = wtc.build_model(graph)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_a_per_block_list_must_have_one_entry_per_block():
    with pytest.raises(SpecError, match="lists 2 values, one per block, but the stage has "
                                        "depth 3"):
        _spec(LISTS.replace("EXPANSIONS", "[1, 4]"))
    with pytest.raises(SpecError, match="should be a int"):
        _spec(LISTS.replace("EXPANSIONS", "[1, 4, true]"))


def test_depth_proxies_keep_the_first_entries_and_repeat_the_last():
    spec = _spec(LISTS.replace("EXPANSIONS", "[1, 4, 6]"))
    shallow = spec.scaled(depths=[2])
    assert shallow.stages[0].params["expansion"] == [1, 4]
    deep = spec.scaled(depth=2.0)
    assert deep.stages[0].params["expansion"] == [1, 4, 6, 6, 6, 6]
    assert deep.stages[0].params["kernel"] == [3, 5, 5, 5, 5, 5]
    compile_spec(deep)


def test_bn_momentum():
    body = HEAD.replace("conv_bn_act", "cba") + """
templates:
  cba:
    params: {m: 0.01}
    nodes:
      - {name: conv, op: conv, out: width, kernel: 3, stride: stride}
      - {name: bn, op: bn, momentum: m, eps: 0.001}
stages:
  - {name: s1, block: cba, width: 8}
head:
  - {block: classifier}
"""
    graph = compile_spec(_spec(body))
    bn = wtc.build_model(graph).stem[0].bn
    assert bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(0.001)
    with pytest.raises(SpecError, match=r"momentum must be in \(0, 1\]"):
        compile_spec(_spec(body.replace("m: 0.01", "m: 1.5")))


def test_an_unused_stage_width_is_an_error():
    body = HEAD + """
stages:
  - {name: s1, block: maxpool, width: 64}
head:
  - {block: classifier}
"""
    with pytest.raises(SpecError, match="never reads `width`") as e:
        compile_spec(_spec(body))
    assert e.value.path == "stages[0].width"
    spec = _spec(body.replace(", width: 64", ""))  # a stage without width: its input's
    assert compile_spec(spec).groups["stem.block0.conv"].base == 8


ABSOLUTE = """name: incept
input: {channels: 3, resolution: 32}
classes: 10
stem:
  - {block: conv_bn_act, width: 16, stride: 2}
templates:
  incept:
    nodes:
      - {name: a, op: conv, inputs: input, out: 64, kernel: 1}
      - {name: b, op: conv, inputs: input, out: 64, kernel: 3}
      - {name: cat, op: concat, inputs: [a, b]}
stages:
  - {name: s1, block: incept, depth: 2}
head:
  - {block: classifier}
"""


def test_proxy_width_warns_when_the_macs_barely_move(cli, tmp_path):
    spec = tmp_path / "incept.yaml"
    spec.write_text(ABSOLUTE)
    code, _, err = cli("proxy", spec, "--width", "0.5", "-o", tmp_path / "p.yaml")
    assert code == 0, err
    assert "warning" in err and "block 'incept' node 'a': out = 64" in err
    code, _, err = cli("proxy", "specs/resnet20.yaml", "--width", "0.5",
                         "-o", tmp_path / "r.yaml")
    assert code == 0 and "warning" not in err


def test_a_stale_macs_achieved_is_reported(cli, tmp_path):
    graph = compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    path = tmp_path / "w.json"
    save_widths(uniform_widths(graph, multiplier=0.5), path)
    code, _, err = cli("show", "specs/resnet20.yaml", "--widths", path)
    assert code == 0 and "warning" not in err
    data = json.loads(path.read_text())
    data["macs"]["achieved"] = 12345
    path.write_text(json.dumps(data))
    code, _, err = cli("show", "specs/resnet20.yaml", "--widths", path)
    assert code == 0 and "macs.achieved = 12345" in err
