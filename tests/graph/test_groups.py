"""The width groups, spelled out for ResNet-20, ResNet-50 and MobileNetV2."""

from __future__ import annotations

import pytest

import wtc

pytestmark = pytest.mark.unit


def groups_of(path):
    return wtc.compile_spec(wtc.load_spec(path)).groups


def test_resnet20_groups():
    g = groups_of("specs/resnet20.yaml")
    inner = [f"stage{s}.block{b}.conv1" for s in (1, 2, 3) for b in range(3)]
    assert sorted(g) == sorted(["input", "logits", "stage1.res", "stage2.res", "stage3.res",
                                *inner])
    # the stem and stage 1's residual stream are one group (identity shortcuts all the way)
    assert g["stage1.res"].producers == ("stem.block0.conv", "stage1.block0.conv2",
                                         "stage1.block1.conv2", "stage1.block2.conv2")
    # later stages: one residual group each, joined by the projection shortcut
    assert set(g["stage2.res"].producers) == {"stage2.block0.conv2", "stage2.block0.shortcut",
                                              "stage2.block1.conv2", "stage2.block2.conv2"}
    assert g["stage3.res"].base == 64 and g["stage3.res"].kind == "res"
    assert g["stage2.block1.conv1"].producers == ("stage2.block1.conv1",)
    assert g["stage2.block1.conv1"].kind == "block"
    assert g["input"].fixed and g["logits"].fixed and g["logits"].base == 10
    # bn and relu carry their conv's group; the add carries the residual group
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    assert graph.node("stage2.block1.bn1")["groups"] == ("stage2.block1.conv1",)
    assert graph.node("stage2.block1.add")["groups"] == ("stage2.res",)


def test_resnet50_groups():
    g = groups_of("specs/resnet50.yaml")
    depths = {"layer1": 3, "layer2": 4, "layer3": 6, "layer4": 3}
    inner = [f"{s}.block{b}.conv{i}" for s, d in depths.items() for b in range(d) for i in (1, 2)]
    res = [f"{s}.res" for s in depths]
    assert sorted(g) == sorted(["input", "logits", "stem.block0.conv", *res, *inner])
    # the stem is its own group: layer1's first block projects 64 → 256
    assert g["stem.block0.conv"].base == 64 and g["stem.block0.conv"].kind == "block"
    assert g["layer1.res"].base == 256
    assert g["layer4.res"].base == 2048
    assert set(g["layer1.res"].producers) == {"layer1.block0.conv3", "layer1.block0.shortcut",
                                              "layer1.block1.conv3", "layer1.block2.conv3"}
    assert g["layer3.block5.conv2"].base == 256


def test_mobilenetv2_groups():
    g = groups_of("specs/mobilenetv2.yaml")
    depths = [1, 2, 3, 4, 3, 3, 1]
    expands = [f"stage{s}.block{b}.expand" for s, d in enumerate(depths, 1) for b in range(d)
               if s > 1]
    res = [f"stage{s}.res" for s in (2, 3, 4, 5, 6)]
    assert sorted(g) == sorted(["input", "logits", "stem.block0.conv", "stage1.block0.project",
                                "stage7.block0.project", "head.block0.conv", *expands, *res])
    # one group per block for expand + depthwise
    assert "stage3.block1.dw" in g["stage3.block1.expand"].members
    assert g["stage3.block1.expand"].base == 32 * 6
    # the first block has no expansion: its depthwise conv runs on the stem's channels
    assert "stage1.block0.dw" in g["stem.block0.conv"].members
    # one group per residual chain for the projections
    assert g["stage4.res"].producers == tuple(f"stage4.block{b}.project" for b in range(4))
    # stage 5 starts by changing width (64 → 96): its chain is still one group
    assert g["stage5.res"].producers == tuple(f"stage5.block{b}.project" for b in range(3))


def test_group_ids_are_stable_across_compiles():
    a = groups_of("specs/mobilenetv2.yaml")
    b = groups_of("specs/mobilenetv2.yaml")
    assert list(a) == list(b)


def test_user_template_groups_concat_and_squeeze_excite():
    g = groups_of("specs/tiny/se_concat_tiny.yaml")
    # concat outputs are sums, not variables: each branch is its own group
    assert g["stage1.block0.b3"].base == 6 and g["stage1.block0.b1"].base == 6
    # the SE expand conv is multiplied into the residual stream: tied to it
    assert "stage2.block0.se_expand" in g["stage2.res"].producers
    assert g["stage2.block1.se_reduce"].base == 4
