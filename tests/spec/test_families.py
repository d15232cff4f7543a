"""The CNN families of issue 12: ResNeXt, RegNet, ShuffleNetV2, EfficientNet, ConvNeXt.

Their specs have torchvision's exact parameter counts and MACs; their width groups carry the
ties and divisibility the math requires; and each of them searches (uniform, MorphNet on
synthetic data), transfers between two depths and exports to ONNX. The searches and exports
run on small proxies of the specs (the same templates, ops and groups at 32 px) so the whole
file stays fast; analytic counts at random valid widths are checked against torch's flop
counter for every spec in tests/test_cost.py.
"""

from __future__ import annotations

import random

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import wtc
from tests.helpers import ROOT
from wtc.errors import TargetError, WidthsError
from wtc.export import export_onnx
from wtc.graph import compile_spec, count_macs, count_params
from wtc.nn.layers import ChannelChunk, ChannelShuffle, DropPath, LayerNorm2d
from wtc.spec import load_spec
from wtc.widths import check_widths, scale_to_macs, steps, uniform_widths
from wtc.widthtransfer import transfer

pytestmark = pytest.mark.integration

SYNTH = {"data": "synthetic", "synthetic_size": 64, "synthetic_test_size": 32,
         "batch_size": 32}

# spec → (torchvision factory, parameters, MACs at 224 px): torchvision 0.29's models
REFERENCE = {
    "resnext50": ("resnext50_32x4d", 25_028_904, 4_230_479_872),
    "regnetx_400mf": ("regnet_x_400mf", 5_495_976, 413_812_608),
    "regnety_400mf": ("regnet_y_400mf", 4_344_144, 401_842_848),
    "shufflenetv2": ("shufflenet_v2_x1_0", 2_278_604, 144_907_992),
    "efficientnet_b0": ("efficientnet_b0", 5_288_548, 385_814_752),
    "convnext_tiny": ("convnext_tiny", 28_589_128, 4_455_531_264),
}
FAMILIES = [*REFERENCE, "shufflenetv2_fmnist"]


def graph_of(name: str):
    return compile_spec(load_spec(ROOT / "specs" / f"{name}.yaml"))


def proxy_of(name: str, depth: int = 1):
    """The spec at 32 px (28 for Fashion-MNIST), half width, `depth` blocks per stage."""
    spec = load_spec(ROOT / "specs" / f"{name}.yaml")
    res = min(spec.input.resolution, 32)
    return compile_spec(spec.scaled(width=0.5, depths=[depth] * len(spec.stages),
                                    resolution=res, classes=4))


def random_valid(graph, seed: int = 0, spread: float = 0.5) -> dict[str, int]:
    """Random widths around the base that respect every group's step."""
    rng = random.Random(seed)
    step = steps(graph)
    return {g: step[g] * max(1, round(graph.groups[g].base * rng.uniform(1 - spread, 1 + spread)
                                      / step[g])) for g in graph.free_groups}


# --------------------------------------------------------------------------- reference numbers


@pytest.mark.parametrize("name", REFERENCE)
def test_parameters_and_macs_are_torchvisions(name):
    _, params, macs = REFERENCE[name]
    graph = graph_of(name)
    assert count_params(graph) == params
    assert count_macs(graph) == macs


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_numbers_are_torchvisions_own_counts(name):
    """The numbers above, counted on torchvision's model (on the meta device: shapes only), and
    the parameter tensors of both models have the same sizes."""
    factory, params, macs = REFERENCE[name]
    theirs = getattr(torchvision.models, factory)().eval().to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        theirs(torch.zeros(1, 3, 224, 224, device="meta"))
    assert sum(p.numel() for p in theirs.parameters()) == params
    assert counter.get_total_flops() // 2 == macs  # conv + linear only, as wtc counts
    with torch.device("meta"):
        ours = wtc.build_model(graph_of(name), init=False)
    assert sorted(p.numel() for p in ours.parameters()) == sorted(
        p.numel() for p in theirs.parameters())


def test_stochastic_depth_rates_are_torchvisions():
    def ours(name):
        graph = graph_of(name)
        return [graph.nx.nodes[n]["p"] for n in graph.order
                if graph.nx.nodes[n]["op"] == "droppath"]

    with torch.device("meta"):  # shapes only: no weights drawn
        convnext = torchvision.models.convnext_tiny()
        effnet = torchvision.models.efficientnet_b0()
    # ConvNeXt: every block, rate 0.1 · i / (blocks - 1)
    theirs = [m.p for m in convnext.modules()
              if isinstance(m, torchvision.ops.StochasticDepth)]
    assert ours("convnext_tiny") == theirs and len(theirs) == 18
    # EfficientNet: rate 0.2 · i / blocks, applied where the block has a residual
    theirs = [m.stochastic_depth.p for m in effnet.modules()
              if isinstance(m, torchvision.models.efficientnet.MBConv) and m.use_res_connect]
    assert ours("efficientnet_b0") == theirs and len(theirs) == 9


def test_fashion_mnist_variant_maps_28px_to_logits():
    graph = graph_of("shufflenetv2_fmnist")
    assert (graph.spec.input.channels, graph.spec.input.resolution, graph.spec.classes) == (
        1, 28, 10)
    assert [s.out_hw for s in graph.stages][1:4] == [(14, 14), (7, 7), (4, 4)]
    model = wtc.build_model(graph).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


# --------------------------------------------------------------------------- width groups


def test_resnext_inner_groups_keep_their_group_width():
    g = graph_of("resnext50").groups
    for stage, gw in (("layer1", 4), ("layer2", 8), ("layer3", 16), ("layer4", 32)):
        inner = g[f"{stage}.block0.conv1"]
        assert inner.multiple == gw and inner.base == 32 * gw
        # conv1 produces it, the grouped conv2 keeps it (in = out), bn2 carries it on
        assert inner.producers == (f"{stage}.block0.conv1",)
        assert {f"{stage}.block0.conv2", f"{stage}.block0.bn2"} <= set(inner.members)
        assert g[f"{stage}.res"].multiple == 1
    assert len(g) == 2 + 1 + 4 + (3 + 4 + 6 + 3)  # input, logits, stem, res, one per block


def test_regnet_groups_and_squeeze_excite_tie():
    x = graph_of("regnetx_400mf").groups
    assert {grp.multiple for gid, grp in x.items() if gid.endswith(".a")} == {16}
    assert x["stem.block0.conv"].multiple == 1
    y = graph_of("regnety_400mf").groups
    inner = y["stage2.block1.a"]
    # the SE expand conv is multiplied into the bottleneck: one group, a multiple of 8
    assert inner.producers == ("stage2.block1.a", "stage2.block1.se_expand")
    assert inner.multiple == 8 and inner.kind == "block"
    assert y["stage2.block1.se_reduce"].base == 26  # round(0.25 * 104)


def test_shufflenet_halves_are_one_group_per_stage():
    graph = graph_of("shufflenetv2")
    g = graph.groups
    res = g["stage3.res"]
    assert res.base == 116 and res.kind == "res"
    # block 0's two branches and every block's transformed half: tied by the shuffle
    assert set(res.producers) == {"stage3.block0.b1_conv",
                                  *(f"stage3.block{b}.b2_conv2" for b in range(8))}
    # a stride-1 unit splits the shuffled halves: both chunks carry the stage group
    assert graph.node("stage3.block1.left")["groups"] == ("stage3.res",)
    assert graph.node("stage3.block1.right")["groups"] == ("stage3.res",)
    assert graph.node("stage3.block1.shuffle")["groups"] == ("stage3.res", "stage3.res")
    assert g["stage3.block1.b2_conv1"].kind == "block"
    # the next stage reads both halves: 2 x 116 input channels
    assert graph.node("stage4.block0.b1_conv")["in_groups"] == ("stage3.res", "stage3.res")


def test_efficientnet_squeeze_excite_is_tied_to_the_expanded_width():
    g = graph_of("efficientnet_b0").groups
    block = g["stage3.block1.expand"]
    assert block.producers == ("stage3.block1.expand", "stage3.block1.se_expand")
    assert {"stage3.block1.dw", "stage3.block1.se_mul"} <= set(block.members)
    assert g["stage3.block1.se_reduce"].base == 10  # a quarter of the block's 40 inputs
    # stage 1 has no expansion: its depthwise conv and SE gate run on the stem's channels
    assert "stage1.block0.se_expand" in g["stage1.res"].producers


def test_convnext_stages_are_residual_streams():
    g = graph_of("convnext_tiny").groups
    assert "stem.block0.conv" in g["stage1.res"].producers
    assert set(g["stage2.res"].producers) == {"stage2.block0.down",
                                              *(f"stage2.block{b}.pw2" for b in range(3))}
    assert g["stage3.block4.pw1"].base == 4 * 384
    assert len(g) == 2 + 4 + 18  # input, logits, four streams, one MLP width per block


# --------------------------------------------------------------------------- rounding


def test_rounding_keeps_group_multiples():
    graph = graph_of("resnext50")
    for w in (uniform_widths(graph, multiplier=0.37),
              uniform_widths(graph, target_macs=count_macs(graph) // 2)):
        assert all(c % graph.groups[g].multiple == 0 for g, c in w.groups.items())
        check_widths(graph, w.groups)
    chans, _ = scale_to_macs(graph, dict.fromkeys(graph.free_groups, 1.0), 10**9)
    assert all(c % graph.groups[g].multiple == 0 for g, c in chans.items())


def test_widths_that_break_a_group_width_are_refused():
    graph = graph_of("regnetx_400mf")
    groups = {g: graph.groups[g].base for g in graph.free_groups}
    with pytest.raises(WidthsError, match=r"'stage3\.block2\.a' has 150 channels; it must be "
                                          "a multiple of 16"):
        check_widths(graph, {**groups, "stage3.block2.a": 150})
    with pytest.raises(WidthsError, match="at most 65,536"):
        check_widths(graph, {**groups, "stage3.res": 2 * 10**9})


def test_the_smallest_network_is_one_group_width_per_group():
    graph = graph_of("resnext50")
    smallest = {g: graph.groups[g].multiple for g in graph.free_groups}
    with pytest.raises(TargetError, match="below the smallest network"):
        uniform_widths(graph, target_macs=count_macs(graph, smallest) - 1)


# --------------------------------------------------------------------------- search, transfer


@pytest.mark.parametrize("name", FAMILIES)
def test_uniform_and_morphnet_search(name):
    graph = proxy_of(name)
    for method, extra in (("uniform", {}), ("morphnet", {"data": SYNTH, "epochs": 1,
                                                         "settings": {"strength": 5.0}})):
        res = wtc.search(graph, method, target_macs="0.6x", threads=1, **extra)
        target = round(0.6 * count_macs(graph))
        assert abs(res.macs - target) <= 0.05 * target, (method, res.macs, target)
        check_widths(graph, res.groups)  # multiples of every group's group width
        assert res.widths.provenance["method"] == method


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("rule", ["last", "average", "interpolate"])
def test_transfer_from_a_shallow_proxy(name, rule):
    shallow, deep = proxy_of(name, depth=1), proxy_of(name, depth=3)
    source = wtc.widths.widths_from_groups(shallow, random_valid(shallow, seed=3))
    budget = round(0.8 * count_macs(deep))
    result = transfer(source, shallow, deep, stacking=rule, target_macs=budget)
    check_widths(deep, result.widths.groups)
    assert abs(result.macs - budget) <= 0.05 * budget
    assert not result.unmatched
    same = transfer(source, shallow, shallow, target_macs=source.macs)
    assert same.widths.groups == source.groups


@pytest.mark.parametrize("name", FAMILIES)
def test_export_at_nonuniform_widths(name, tmp_path):
    graph = proxy_of(name, depth=2)
    groups = random_valid(graph, seed=1)
    rep = export_onnx(graph, groups, tmp_path / "m.onnx")
    assert rep.rel_diff <= 1e-4 and rep.widths == groups
    assert rep.macs == count_macs(graph, groups)


# --------------------------------------------------------------------------- the new modules


def test_layer_norm_2d_is_torchvisions():
    from torchvision.models.convnext import LayerNorm2d as Theirs

    x = torch.randn(2, 8, 5, 5)
    ours, theirs = LayerNorm2d(8, eps=1e-6), Theirs(8, eps=1e-6)
    with torch.no_grad():
        for m in (ours, theirs):
            m.weight.copy_(torch.linspace(0.5, 2, 8))
            m.bias.copy_(torch.linspace(-1, 1, 8))
    torch.testing.assert_close(ours(x), theirs(x))


def test_shuffle_and_split_are_torchvisions():
    from torchvision.models.shufflenetv2 import channel_shuffle

    x = torch.randn(2, 12, 3, 3)
    torch.testing.assert_close(ChannelShuffle(3)(x), channel_shuffle(x, 3))
    a, b = x.chunk(2, dim=1)
    torch.testing.assert_close(ChannelChunk(2, 0)(x), a)
    torch.testing.assert_close(ChannelChunk(2, 1)(x), b)


def test_droppath_drops_whole_samples_in_training_only():
    drop = DropPath(0.5)
    x = torch.ones(64, 3, 2, 2)
    y = drop(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert ((per_sample == 0).all(1) | (per_sample == 2).all(1)).all()
    drop.eval()
    assert drop(x) is x


def test_layer_scale_starts_at_its_init():
    spec = load_spec(ROOT / "specs" / "convnext_tiny.yaml")
    model = wtc.build_model(compile_spec(spec.scaled(depths=[1, 1, 1, 1], resolution=32)))
    scale = model.get_submodule("stages.1.blocks.0.scale")
    assert torch.all(scale.weight == 1e-6) and scale.weight.shape == (192, 1, 1)


def test_morphnet_reads_layer_norm_gammas():
    from wtc.optimizers.gamma import GammaRegularizer

    graph = proxy_of("convnext_tiny", depth=2)
    reg = GammaRegularizer(graph, wtc.build_model(graph))
    # the streams carry layer norms (stem, downsampling, every block); the MLP widths have none
    assert set(reg.gated) == {f"stage{s}.res" for s in (1, 2, 3, 4)}
    assert all(g.endswith(".pw1") for g in reg.ungated)
    assert float(reg().detach()) > 0


@pytest.mark.parametrize("name", ["regnetx_400mf", "shufflenetv2_fmnist", "convnext_tiny"])
def test_autoslim_on_the_supernet_of_new_ops(name):
    """gconv, split/shuffle, layer norm and layer scale run slimmed: AutoSlim finds widths that
    keep every group width."""
    graph = proxy_of(name)
    fast = {"epochs": 1, "steps": 3, "samples": 2, "eval_batches": 1, "bn_batches": 1,
            "distill": False}
    res = wtc.search(graph, "autoslim", "0.5x", settings=fast, data=SYNTH, threads=1)
    check_widths(graph, res.groups)
    target = round(0.5 * count_macs(graph))
    assert abs(res.macs - target) <= 0.1 * target


FIXED_GROUPS = """name: fixed_groups
input: {channels: 4, resolution: 8}
classes: 3
templates:
  grouped:
    nodes:
      - {name: conv, op: conv, out: width, kernel: 3, groups: 4}
      - {name: bn, op: bn}
      - {name: act, op: act, fn: relu}
      - {name: pw, op: conv, out: width, kernel: 1, groups: 2}
stages:
  - {name: s1, block: grouped, width: 8}
  - {name: s2, block: grouped, width: 16, stride: 2}
head:
  - {block: classifier}
"""


def test_conv_with_a_fixed_number_of_groups():
    from wtc.errors import ConfigError, SpecError
    from wtc.nn.slimmable import Supernet

    graph = compile_spec(wtc.parse_spec(FIXED_GROUPS))
    g = graph.groups
    # the 4-group conv needs its input and output in multiples of 4, the 2-group 1x1 of 2
    assert (g["s1.block0.conv"].multiple, g["s1.block0.pw"].multiple) == (4, 4)
    assert (g["s2.block0.conv"].multiple, g["s2.block0.pw"].multiple) == (4, 2)
    assert g["input"].multiple == 4
    widths = {"s1.block0.conv": 12, "s1.block0.pw": 20, "s2.block0.conv": 8, "s2.block0.pw": 6}
    model = wtc.build_model(graph, widths).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 4, 8, 8))
    assert counter.get_total_flops() // 2 == count_macs(graph, widths)
    assert sum(p.numel() for p in model.parameters()) == count_params(graph, widths)
    with pytest.raises(WidthsError, match=r"'s2\.block0\.pw' has 5 channels; it must be a "):
        check_widths(graph, {**widths, "s2.block0.pw": 5})
    with pytest.raises(ConfigError, match="fixed number of groups; use gconv"):
        Supernet(graph)
    with pytest.raises(SpecError, match="groups=4 needs channels that are a multiple of 4, "
                                        "got 6"):
        compile_spec(wtc.parse_spec(FIXED_GROUPS.replace("width: 8}", "width: 6}")))
