"""Widths: uniform scaling to a MACs target, the widths.json round trip, and group checks."""

from __future__ import annotations

import json

import pytest
import torch

import wtc
from tests.helpers import SPECS, spec_id
from wtc.errors import TargetError, WidthsError, WriteError
from wtc.widths import make_divisible, scale_to_macs, steps

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
@pytest.mark.parametrize("factor", [0.5, 1.0, 2.0])
def test_uniform_scaling_meets_the_target_within_one_percent(path, factor):
    graph = wtc.compile_spec(wtc.load_spec(path))
    target = round(factor * wtc.count_macs(graph))
    w = wtc.uniform_widths(graph, target_macs=target)
    assert abs(w.macs - target) / target < 0.01
    assert w.macs == wtc.count_macs(graph, w.groups)
    step = steps(graph)  # the divisor (or a group width / the base's own step) per group
    assert all(c % step[g] == 0 and c >= step[g] for g, c in w.groups.items())
    if factor == 1.0:
        assert w.groups == wtc.base_widths(graph).groups


def test_uniform_multiplier_is_one_multiplier():
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    w = wtc.uniform_widths(graph, multiplier=0.5)
    assert {g: graph.groups[g].base // 2 for g in graph.free_groups} == w.groups


def test_impossible_target_is_a_clear_error():
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    with pytest.raises(TargetError, match="below the smallest network"):
        wtc.uniform_widths(graph, target_macs=1000)
    with pytest.raises(TargetError, match="positive"):
        scale_to_macs(graph, dict.fromkeys(graph.free_groups, 1.0), 0)


def test_make_divisible_follows_the_mobilenet_rule():
    assert make_divisible(12, 8) == 16
    assert make_divisible(20, 8) == 24  # 16 would lose more than 10%
    assert make_divisible(3, 8) == 8
    assert make_divisible(17.4, 1) == 17


def test_save_load_round_trip(tmp_path):
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/mbv2_tiny.yaml"))
    w = wtc.uniform_widths(graph, target_macs=wtc.count_macs(graph) // 2).with_provenance(
        seed=3, note="test")
    path = tmp_path / "w.json"
    wtc.save_widths(w, path)
    data = json.loads(path.read_text())
    assert data["format"] == "wtc.widths/1"
    assert data["spec"] == {"name": "mbv2_tiny", "hash": graph.spec_hash}
    assert data["macs"]["achieved"] == w.macs
    back = wtc.load_widths(path, graph)
    assert back.groups == w.groups and back.provenance["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["w.json"]  # no temporary file left


def test_failed_save_leaves_no_file(tmp_path):
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    with pytest.raises(WriteError, match="does not exist"):
        wtc.save_widths(wtc.base_widths(graph), tmp_path / "missing" / "w.json")
    assert list(tmp_path.iterdir()) == []


def test_widths_that_respect_groups_build_and_others_are_refused():
    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    groups = {g: 3 + i for i, g in enumerate(graph.free_groups)}
    model = wtc.build_model(graph, groups)
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 4)
    bad = dict(groups)
    bad.pop("stage2.res")
    with pytest.raises(WidthsError, match="missing group"):
        wtc.build_model(graph, bad)
    with pytest.raises(WidthsError, match=r"'stage1\.res' has 0 channels"):
        wtc.build_model(graph, {**groups, "stage1.res": 0})


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os

    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    wtc.save_widths(wtc.base_widths(graph), tmp_path / "w.json")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "w.json").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("text,relative,value", [
    ("0.5x", True, 0.5), (" 1.0X ", True, 1.0), ("41M", False, 41e6), ("2.5k", False, 2500.0),
    ("1g", False, 1e9), ("4.1e7", False, 4.1e7), (41_000_000, False, 41e6), (4.1e7, False, 4.1e7),
])
def test_a_macs_target_is_parsed_once_into_a_typed_value(text, relative, value):
    from wtc.widths import MacsTarget

    t = MacsTarget.parse(text)
    assert (t.relative, t.value) == (relative, pytest.approx(value))
    assert MacsTarget.parse(t) is t  # parsed values pass through
    assert t.macs(1000) == round(value * 1000 if relative else value)


@pytest.mark.parametrize("bad,match", [
    ("lots", "cannot read MACs target 'lots'"), ("", "cannot read"), ("-1x", "positive"),
    ("0", "positive"), ("inf", "finite"), (True, "not True"), ([0.5], "not \\[0.5\\]"),
])
def test_a_bad_macs_target_is_a_target_error(bad, match):
    from wtc.widths import MacsTarget

    with pytest.raises(TargetError, match=match):
        MacsTarget.parse(bad)


def test_several_targets_keep_their_order_and_text():
    from wtc.widths import parse_targets, resolve_macs

    graph = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    ts = parse_targets("0.25x, 0.5x,41M")
    assert [t.text for t in ts] == ["0.25x", "0.5x", "41M"]
    assert parse_targets(["0.5x", 100]) == [ts[1], parse_targets(100)[0]]
    assert resolve_macs(graph, None) == wtc.count_macs(graph)
    assert resolve_macs(graph, "0.5x") == round(0.5 * wtc.count_macs(graph))
    with pytest.raises(TargetError, match="at least one"):
        parse_targets([])


def test_as_widths_is_the_one_reading_of_a_widths_argument(tmp_path):
    """A widths file, a Widths of this spec and a group -> channels mapping give the same
    Widths; another spec's Widths and anything else are refused, saying what was given."""
    from wtc.widths import as_widths, save_widths, uniform_widths

    g = wtc.compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    other = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    w = uniform_widths(g, multiplier=0.5)
    save_widths(w, tmp_path / "w.json")
    for given in (w, dict(w.groups), tmp_path / "w.json", str(tmp_path / "w.json")):
        assert as_widths(g, given).groups == w.groups, given
    with pytest.raises(WidthsError, match="carry them over with `wtc transfer`"):
        as_widths(other, w)
    with pytest.raises(WidthsError, match="missing group"):
        as_widths(g, {})
    with pytest.raises(WidthsError, match="not list"):
        as_widths(g, [1, 2])  # type: ignore[arg-type]
