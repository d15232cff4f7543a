"""Width transfer (wtc.transfer): identity, hand-computed stacking cases, a property test over
families, and the errors that name stages and roles."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wtc
from tests.helpers import SPECS, spec_id
from wtc.errors import TransferError, WidthsError
from wtc.graph import compile_spec, count_macs
from wtc.spec import load_spec
from wtc.widths import (
    base_widths,
    check_widths,
    make_divisible,
    steps,
    uniform_widths,
    widths_from_groups,
)
from wtc.widthtransfer import GroupMapping, TransferResult, project_spec, transfer

pytestmark = pytest.mark.unit


def graph(path: str, **scaled):
    spec = load_spec(path)
    return compile_spec(spec.scaled(**scaled) if scaled else spec)


def with_widths(g, **overrides: int):
    """Base widths of `g` with some groups changed (group ids with '.' written as '__')."""
    groups = {k: g.groups[k].base for k in g.free_groups}
    for key, value in overrides.items():
        gid = key.replace("__", ".")
        assert gid in groups, gid
        groups[gid] = value
    return widths_from_groups(g, groups, method="test")


def ratios(result: TransferResult) -> dict[str, float]:
    return {g: m.ratio for g, m in result.mapping.items()}


def exact_budget(target, result_ratios: dict[str, float]) -> tuple[dict[str, int], int]:
    """Widths ratio·base (whole numbers by construction) and their MACs: with that budget the
    transfer needs α = 1, so the widths are the hand-computed ones exactly."""
    expected = {}
    for g, r in result_ratios.items():
        v = r * target.groups[g].base
        assert abs(v - round(v)) < 1e-9, (g, v)
        expected[g] = round(v)
    return expected, count_macs(target, expected)


def assert_close_to_alpha(result: TransferResult, target) -> None:
    """Every width is α·ratio·base rounded to the divisor, up or down by at most one step."""
    div = target.spec.divisor
    for g, m in result.mapping.items():
        ideal = result.alpha * m.ratio * target.groups[g].base
        assert abs(m.width - make_divisible(ideal, div)) <= div, (g, m.width, ideal)


# --- identity --------------------------------------------------------------------------------

def scattered(g):
    """Non-uniform widths: groups scaled by 0.5, 0.75, 1, 1.25 in turn, on the divisor (and on
    the group width of a group's grouped convolutions)."""
    factors = (0.5, 0.75, 1.0, 1.25)
    step = steps(g)
    return widths_from_groups(g, {k: make_divisible(g.groups[k].base * factors[i % 4], step[k])
                                  for i, k in enumerate(g.free_groups)})


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_identity_on_every_spec(path):
    g = compile_spec(load_spec(path))
    base = base_widths(g)
    r = transfer(base, g, g)
    assert r.widths.groups == base.groups and r.macs == r.target_macs == base.macs
    assert r.alpha == 1.0 and not r.unmatched
    w = scattered(g)
    assert w.groups != base.groups
    for rule in ("last", "average", "interpolate"):
        r = transfer(w, g, g, stacking=rule, target_macs=w.macs)
        assert r.widths.groups == w.groups, rule
        assert all(m.sources == (gid,) for gid, m in r.mapping.items())


@pytest.mark.parametrize(("src", "dst", "mult"), [
    ("specs/resnet20.yaml", "specs/resnet56.yaml", 0.5),
    ("specs/resnet56.yaml", "specs/resnet20.yaml", 0.75),
    ("specs/mobilenetv2_cifar.yaml", "specs/mobilenetv2_cifar.yaml", 0.5),
])
def test_uniform_transfers_to_uniform(src, dst, mult):
    s, t = graph(src), graph(dst)
    w = uniform_widths(s, multiplier=mult)
    goal = uniform_widths(t, multiplier=mult)
    for rule in ("last", "average", "interpolate"):
        r = transfer(w, s, t, stacking=rule, target_macs=goal.macs)
        div = t.spec.divisor
        assert all(abs(r.widths.groups[g] - goal.groups[g]) <= div for g in goal.groups), rule
        if div == 1:  # no rounding in the ratios: exactly the uniform widths
            assert r.widths.groups == goal.groups
    # and with the default budget (the target's base MACs) uniform becomes the base widths
    r = transfer(w, s, t)
    assert abs(r.macs - r.target_macs) <= 0.01 * r.target_macs
    assert_close_to_alpha(r, t)
    if t.spec.divisor == 1:
        assert {m.ratio for m in r.mapping.values()} == {mult}
        assert r.widths.groups == base_widths(t).groups  # α·mult rounds to 1 for every group


# --- hand-computed cases ---------------------------------------------------------------------

def resnet20_optimized():
    s = graph("specs/resnet20.yaml")
    # ratios: stage1 conv1 0.5, 0.75, 0.25; stage2.res 0.5, conv1 1, 0.5, 1.5;
    # stage3.res 1, conv1 0.5, 1, 1.5; stage1.res 1
    return s, with_widths(s, stage1__block0__conv1=8, stage1__block1__conv1=12,
                          stage1__block2__conv1=4, stage2__res=16, stage2__block0__conv1=32,
                          stage2__block1__conv1=16, stage2__block2__conv1=48,
                          stage3__block0__conv1=32, stage3__block2__conv1=96)


def test_resnet20_to_resnet56_last():
    s, w = resnet20_optimized()
    t = graph("specs/resnet56.yaml")
    r = transfer(w, s, t, stacking="last")
    got = ratios(r)
    stage1 = [0.5, 0.75] + [0.25] * 7
    stage2 = [1.0, 0.5] + [1.5] * 7
    stage3 = [0.5, 1.0] + [1.5] * 7
    for name, want in (("stage1", stage1), ("stage2", stage2), ("stage3", stage3)):
        assert [got[f"{name}.block{j}.conv1"] for j in range(9)] == want
    assert (got["stage1.res"], got["stage2.res"], got["stage3.res"]) == (1.0, 0.5, 1.0)
    assert r.mapping["stage2.block7.conv1"].sources == ("stage2.block2.conv1",)
    assert r.mapping["stage2.res"].sources == ("stage2.res",)
    assert r.mapping["stage1.res"].sources == ("stage1.res",)

    expected, budget = exact_budget(t, got)
    assert expected["stage1.block5.conv1"] == 4 and expected["stage3.block8.conv1"] == 96
    exact = transfer(w, s, t, stacking="last", target_macs=budget)
    assert exact.widths.groups == expected and exact.macs == budget and exact.alpha == 1.0

    # the default budget: the target's base MACs, one α for all groups
    assert r.target_macs == count_macs(t)
    assert abs(r.macs - r.target_macs) <= 0.01 * r.target_macs
    assert_close_to_alpha(r, t)
    assert r.widths.groups["stage1.block5.conv1"] < r.widths.groups["stage1.block0.conv1"]


def test_resnet20_to_resnet56_average():
    s, w = resnet20_optimized()
    t = graph("specs/resnet56.yaml")
    r = transfer(w, s, t, stacking="average")
    got = ratios(r)
    # the first 3 copy one to one, the rest take the stage mean
    assert [got[f"stage1.block{j}.conv1"] for j in range(9)] == [0.5, 0.75, 0.25] + [0.5] * 6
    assert [got[f"stage2.block{j}.conv1"] for j in range(9)] == [1.0, 0.5, 1.5] + [1.0] * 6
    assert [got[f"stage3.block{j}.conv1"] for j in range(9)] == [0.5, 1.0, 1.5] + [1.0] * 6
    assert got["stage2.res"] == 0.5
    assert r.mapping["stage3.block4.conv1"].sources == (
        "stage3.block0.conv1", "stage3.block1.conv1", "stage3.block2.conv1")
    expected, budget = exact_budget(t, got)
    assert expected["stage1.block4.conv1"] == 8 and expected["stage2.block8.conv1"] == 32
    assert transfer(w, s, t, stacking="average", target_macs=budget).widths.groups == expected


def resnet56_linear():
    """ResNet-56 whose conv1 widths grow linearly with the block: 2, 4, ..., 18 in stage1."""
    s = graph("specs/resnet56.yaml")
    return s, with_widths(s, **{f"stage1__block{i}__conv1": 2 * (i + 1) for i in range(9)})


def test_resnet56_to_resnet20_interpolate():
    s, w = resnet56_linear()
    t = graph("specs/resnet20.yaml")
    r = transfer(w, s, t, stacking="interpolate")
    got = ratios(r)
    # target block j sits at source block 8·j/2 = 0, 4, 8: widths 2, 10, 18 of 16
    assert [got[f"stage1.block{j}.conv1"] for j in range(3)] == [2 / 16, 10 / 16, 18 / 16]
    assert r.mapping["stage1.block1.conv1"].sources == ("stage1.block4.conv1",)
    assert got["stage2.block1.conv1"] == 1.0 and got["stage1.res"] == 1.0
    expected, budget = exact_budget(t, got)
    assert [expected[f"stage1.block{j}.conv1"] for j in range(3)] == [2, 10, 18]
    assert transfer(w, s, t, stacking="interpolate", target_macs=budget).widths.groups == \
        expected

    # 4 target blocks: positions 0, 8/3, 16/3, 8 → fractional blocks, linear in between
    t4 = graph("specs/resnet56.yaml", depths=[4, 4, 4])
    got4 = ratios(transfer(w, s, t4, stacking="interpolate"))
    for j in range(4):
        x = 8 * j / 3
        assert got4[f"stage1.block{j}.conv1"] == pytest.approx(2 * (x + 1) / 16, abs=1e-12)
    assert transfer(w, s, t4, stacking="interpolate").mapping["stage1.block1.conv1"].sources \
        == ("stage1.block2.conv1", "stage1.block3.conv1")


def test_resnet20_to_resnet56_interpolate_upward():
    s, w = resnet20_optimized()
    t = graph("specs/resnet56.yaml")
    got = ratios(transfer(w, s, t, stacking="interpolate"))
    # target block j at source position 2·j/8: block 1 = 0.75·r0 + 0.25·r1
    r0, r1, r2 = 0.5, 0.75, 0.25
    want = [r0, 0.75 * r0 + 0.25 * r1, 0.5 * r0 + 0.5 * r1, 0.25 * r0 + 0.75 * r1, r1,
            0.75 * r1 + 0.25 * r2, 0.5 * r1 + 0.5 * r2, 0.25 * r1 + 0.75 * r2, r2]
    assert [got[f"stage1.block{j}.conv1"] for j in range(9)] == pytest.approx(want, abs=1e-12)


def test_half_width_proxy_to_full_width():
    s = graph("specs/resnet20.yaml", width=0.5)  # 8 / 16 / 32 channels
    t = graph("specs/resnet20.yaml")
    assert s.groups["stage3.res"].base == 32
    w = with_widths(s, stage2__block1__conv1=8, stage3__res=48, stage1__block0__conv1=12)
    r = transfer(w, s, t)
    got = ratios(r)
    assert got["stage2.block1.conv1"] == 0.5 and got["stage3.res"] == 1.5
    assert got["stage1.block0.conv1"] == 1.5 and got["stage2.res"] == 1.0
    expected, budget = exact_budget(t, got)
    assert (expected["stage2.block1.conv1"], expected["stage3.res"],
            expected["stage1.block0.conv1"]) == (16, 96, 24)
    assert transfer(w, s, t, target_macs=budget).widths.groups == expected
    assert abs(r.macs - count_macs(t)) <= 0.01 * count_macs(t)  # default budget: base MACs
    assert_close_to_alpha(r, t)
    assert r.alpha < 1  # the wider stage3 costs more than the narrower conv saves


def test_resolution_14_to_28():
    s = graph("specs/resnet20_fmnist.yaml", resolution=14)
    t = graph("specs/resnet20_fmnist.yaml")
    assert s.spec_hash != t.spec_hash and list(s.groups) == list(t.groups)
    w = with_widths(s, stage1__res=8, stage2__block2__conv1=48, stage3__block0__conv1=40)
    r = transfer(w, s, t)
    got = ratios(r)
    assert got["stage1.res"] == 0.5 and got["stage2.block2.conv1"] == 1.5
    assert got["stage3.block0.conv1"] == 40 / 64
    assert all(m.sources == (g,) for g, m in r.mapping.items())
    # the same topology: with the budget the widths have at 28 px, they carry over unchanged
    same = transfer(w, s, t, target_macs=count_macs(t, w.groups))
    assert same.widths.groups == w.groups
    # the default budget: the target's base MACs (≈ 4x the proxy's at 14 px)
    assert abs(r.macs - count_macs(t)) <= 0.01 * count_macs(t)
    assert_close_to_alpha(r, t)


@pytest.mark.parametrize(("rule", "stage3_last"), [("last", 96), ("average", 144)])
def test_mobilenetv2_half_depth_to_full(rule, stage3_last):
    s = graph("specs/mobilenetv2_cifar.yaml", depth=0.5)
    t = graph("specs/mobilenetv2_cifar.yaml")
    assert [x.depth for x in s.spec.stages] == [1, 1, 2, 2, 2, 2, 1]
    # stage2 has one block in the proxy: its projection is a "block" group of role project,
    # and in the target (depth 2) the "res" group of both projections
    assert s.groups["stage2.block0.project"].kind == "block"
    assert t.groups["stage2.res"].kind == "res"
    w = with_widths(s, stage2__block0__project=16, stage2__block0__expand=48,
                    stage3__block1__expand=96, stage7__block0__project=160)
    r = transfer(w, s, t, stacking=rule)
    got = ratios(r)
    assert got["stage2.res"] == 16 / 24
    assert r.mapping["stage2.res"].sources == ("stage2.block0.project",)
    assert got["stage2.block0.expand"] == got["stage2.block1.expand"] == 0.5
    assert got["stage3.block1.expand"] == 0.5
    assert got["stage3.block2.expand"] == {"last": 0.5, "average": 0.75}[rule]
    assert got["stage7.block0.project"] == 0.5 and got["head.block0.conv"] == 1.0
    expected, budget = exact_budget(t, got)
    assert (expected["stage2.res"], expected["stage2.block1.expand"],
            expected["stage3.block2.expand"]) == (16, 72, stage3_last)
    exact = transfer(w, s, t, stacking=rule, target_macs=budget)
    assert exact.widths.groups == expected
    assert abs(r.macs - r.target_macs) <= 0.01 * r.target_macs
    assert all(v % 8 == 0 for v in r.widths.groups.values())

    # and back: the full network onto the half-depth proxy (res group → block group)
    back = transfer(exact.widths, t, s, stacking="interpolate", target_macs=w.macs)
    assert ratios(back)["stage2.block0.project"] == 16 / 24


def test_result_provenance_and_wtc_name():
    s, w = resnet20_optimized()
    t = graph("specs/resnet56.yaml")
    r = wtc.transfer(w, s, t, stacking="average")
    assert isinstance(r, TransferResult)
    assert isinstance(r.mapping["stage1.res"], GroupMapping)
    p = r.widths.provenance
    assert p["method"] == "transfer" and p["rule"] == "average" and p["alpha"] == r.alpha
    assert p["source"]["spec"] == "resnet20" and p["source"]["hash"] == s.spec_hash
    assert p["source"]["file"] == "specs/resnet20.yaml"
    assert p["source_provenance"] == {"method": "test"}
    assert r.widths.spec_hash == t.spec_hash and r.widths.macs == r.macs
    check_widths(t, r.widths.groups)
    assert r.stage_map == {"stem": "stem", "stage1": "stage1", "stage2": "stage2",
                           "stage3": "stage3", "head": "head"}
    data = r.to_json()
    assert data["groups"][0]["group"] in t.groups and data["macs"] == r.macs


def test_project_spec_is_scaled():
    spec = load_spec("specs/resnet50.yaml")
    proxy = project_spec(spec, width=0.5, depth=0.5, resolution=112, name="r50proxy")
    assert proxy == spec.scaled(width=0.5, depth=0.5, resolution=112, name="r50proxy")
    assert [x.depth for x in proxy.stages] == [2, 2, 3, 2]
    assert wtc.project_spec(spec, depths=[1, 1, 1, 1]).stages[2].depth == 1


def test_stage_map_reorders_stages():
    s, w = resnet20_optimized()
    t = graph("specs/resnet20.yaml")
    swap = {"stage1": "stage2", "stage2": "stage1"}
    with pytest.raises(TransferError, match="role 'shortcut' in stage2"):
        transfer(w, s, t, stage_map=swap)  # source stage1 has no projection shortcut
    swapped = transfer(w, s, t, stage_map=swap, keep_unmatched=True)
    got = ratios(swapped)
    assert swapped.stage_map["stage1"] == "stage2" and swapped.stage_map["stage3"] == "stage3"
    assert got["stage1.block2.conv1"] == 1.5 and got["stage2.block2.conv1"] == 0.25
    # producers of stage1.res: the stem conv (→ stem, ratio 1) and three conv2 (→ stage2.res)
    assert got["stage1.res"] == pytest.approx((1.0 + 0.5 * 3) / 4)
    assert swapped.mapping["stage2.res"].missing == ("stage2:shortcut",)
    assert swapped.unmatched == ["stage2.res"]


# --- property: random depths and widths within a family -------------------------------------

FAMILIES = {
    "resnet_cifar": ("specs/resnet20.yaml", 3, 5),
    "mobilenetv2_cifar": ("specs/mobilenetv2_cifar.yaml", 7, 4),
}


@st.composite
def family_pair(draw):
    name = draw(st.sampled_from(sorted(FAMILIES)))
    path, n_stages, max_depth = FAMILIES[name]
    depths = st.lists(st.integers(1, max_depth), min_size=n_stages, max_size=n_stages)
    mult = st.sampled_from([0.5, 0.75, 1.0, 1.5])
    return (path, draw(depths), draw(mult), draw(depths), draw(mult),
            draw(st.sampled_from(["last", "average", "interpolate"])),
            draw(st.integers(0, 2**31)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family_pair())
def test_property_random_depths_and_widths(case):
    import random

    path, d_src, m_src, d_dst, m_dst, rule, seed = case
    spec = load_spec(path)
    s = compile_spec(spec.scaled(depths=d_src, width=m_src))
    t = compile_spec(spec.scaled(depths=d_dst, width=m_dst))
    rng = random.Random(seed)
    w = widths_from_groups(s, {g: make_divisible(s.groups[g].base * rng.uniform(0.3, 1.6),
                                                 s.spec.divisor) for g in s.free_groups})
    r = transfer(w, s, t, stacking=rule)
    assert check_widths(t, r.widths.groups) == r.widths.groups
    assert abs(r.macs - r.target_macs) <= 0.01 * r.target_macs
    assert r.macs == count_macs(t, r.widths.groups) and not r.unmatched
    src = [v / s.groups[g].base for g, v in w.groups.items()]
    # every ratio is a mean of source ratios
    assert all(min(src) - 1e-9 <= m.ratio <= max(src) + 1e-9 for m in r.mapping.values())


# --- failures --------------------------------------------------------------------------------

def test_different_stage_counts_need_a_map():
    s, w = resnet20_optimized()
    t = graph("specs/resnet18.yaml")
    with pytest.raises(TransferError) as e:
        transfer(w, s, t)
    msg = str(e.value)
    assert "stage1, stage2, stage3" in msg and "layer1, layer2, layer3, layer4" in msg


@pytest.mark.parametrize(("stage_map", "words"), [
    ({"layer1": "stage9"}, ["unknown source stage", "'stage9'", "stage1, stage2, stage3"]),
    ({"conv5": "stage1"}, ["unknown target stage", "'conv5'", "layer1, layer2, layer3, layer4"]),
    ({"layer1": "stage1"}, ["does not say", "'layer2', 'layer3', 'layer4'"]),
])
def test_bad_stage_map(stage_map, words):
    s, w = resnet20_optimized()
    t = graph("specs/resnet18.yaml")
    with pytest.raises(TransferError) as e:
        transfer(w, s, t, stage_map=stage_map)
    for word in words:
        assert word in str(e.value)


def test_stage_map_onto_more_stages():
    s, w = resnet20_optimized()
    t = graph("specs/resnet18.yaml")
    r = transfer(w, s, t, stage_map={"layer1": "stage1", "layer2": "stage2", "layer3": "stage3",
                                     "layer4": "stage3"})
    got = ratios(r)
    assert got["layer4.block1.conv1"] == got["layer3.block1.conv1"] == 1.0  # last: block 1
    assert got["layer4.res"] == got["layer3.res"] == 1.0
    assert got["layer2.res"] == pytest.approx(0.5)
    assert got["layer1.block1.conv1"] == 0.75


def test_role_with_no_counterpart():
    s = graph("specs/tiny/resnet_tiny.yaml")  # basic blocks: conv1, conv2
    t = graph("specs/tiny/bottleneck_tiny.yaml")  # bottlenecks: conv1, conv2, conv3
    with pytest.raises(TransferError) as e:
        transfer(base_widths(s), s, t)
    msg = str(e.value)
    assert "'stage1.res'" in msg and "role 'conv3' in stage1" in msg and "keep_unmatched" in msg
    kept = transfer(base_widths(s), s, t, keep_unmatched=True)
    assert kept.unmatched == ["stage1.res", "stage2.res"]
    assert kept.mapping["stage1.res"].missing == ("stage1:conv3",)
    assert kept.widths.provenance["unmatched"] == ["stage1.res", "stage2.res"]
    check_widths(t, kept.widths.groups)


def test_fully_unmatched_group_keeps_ratio_one():
    s = graph("specs/resnet20.yaml")
    w = uniform_widths(s, multiplier=0.5)
    t = graph("specs/tiny/se_concat_tiny.yaml")  # 2 stages, concat and SE roles
    r = transfer(w, s, t, stage_map={"stage1": "stage1", "stage2": "stage2"},
                 keep_unmatched=True, target_macs=count_macs(t))
    assert r.mapping["stage1.block0.b3"].ratio == 1.0 and not r.mapping["stage1.block0.b3"].sources
    assert r.mapping["stage2.block0.conv1"].ratio == 0.5


def test_widths_for_another_spec_and_bad_rule():
    s, w = resnet20_optimized()
    other = graph("specs/resnet20_fmnist.yaml")
    with pytest.raises(WidthsError, match="made for"):
        transfer(w, other, other)
    with pytest.raises(TransferError, match="last, average, interpolate"):
        transfer(w, s, s, stacking="stack")
