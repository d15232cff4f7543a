"""Every spec in specs/ validates, compiles, builds and maps a batch to (N, classes)."""

from __future__ import annotations

import pytest
import torch

import wtc
from tests.helpers import SPECS, spec_id
from wtc.spec import BLOCKS, check_template, dump_spec, parse_spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_spec_compiles_builds_and_runs(path):
    spec = wtc.load_spec(path)
    graph = wtc.compile_spec(spec)
    model = wtc.build_model(graph).eval()
    res = spec.input.resolution
    with torch.no_grad():
        y = model(torch.randn(2, spec.input.channels, res, res))
    assert y.shape == (2, spec.classes)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_spec_has_a_header_comment(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and "Run:" in path.read_text()


@pytest.mark.parametrize("name", BLOCKS.names())
def test_builtin_templates_pass_the_user_template_checks(name):
    assert check_template(BLOCKS.get(name)) is None


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_dump_then_parse_is_the_same_spec(path):
    spec = wtc.load_spec(path)
    again = parse_spec(dump_spec(spec))
    assert again == spec
    assert again.structural_hash == spec.structural_hash


def test_hash_ignores_name_and_comments_but_not_structure(tmp_path):
    spec = wtc.load_spec("specs/resnet20.yaml")
    renamed = spec.scaled(name="other")
    assert renamed.structural_hash == spec.structural_hash
    assert spec.scaled(width=0.5).structural_hash != spec.structural_hash
    assert spec.scaled(resolution=16).structural_hash != spec.structural_hash


def test_transforms_return_new_specs_and_leave_the_original():
    spec = wtc.load_spec("specs/resnet56.yaml")
    proxy = spec.scaled(width=0.5, depth=0.34, resolution=16, classes=5)
    assert [s.depth for s in proxy.stages] == [4, 4, 4]
    assert [s.width for s in proxy.stages] == [8, 16, 32]
    assert proxy.stem[0].width == 8
    assert (proxy.input.resolution, proxy.classes) == (16, 5)
    assert [s.depth for s in spec.stages] == [9, 9, 9]
    assert [s.depth for s in spec.scaled(depths=[1, 2, 3]).stages] == [1, 2, 3]
    with pytest.raises(wtc.errors.SpecError, match="2 depths given for 3 stages"):
        spec.scaled(depths=[1, 2])


def test_stage_view_is_derived_from_the_graph():
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    rows = {s.name: s for s in graph.stages}
    assert [s.name for s in graph.stages] == ["stem", "stage1", "stage2", "stage3", "head"]
    assert (rows["stage2"].depth, rows["stage2"].in_hw, rows["stage2"].out_hw) == (3, (32, 32),
                                                                                 (16, 16))
    assert rows["stage3"].out_hw == (8, 8)


def test_state_dict_names_follow_the_spec():
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    keys = wtc.build_model(graph).state_dict().keys()
    assert "stages.1.blocks.0.shortcut.weight" in keys
    assert "stages.0.blocks.2.conv1.weight" in keys
    assert "head.0.fc.weight" in keys
    assert "stages.0.blocks.0.shortcut.weight" not in keys  # identity shortcut
