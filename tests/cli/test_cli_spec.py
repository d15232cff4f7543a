"""`wtc validate`, `wtc show`, `wtc flops` in-process: exit codes, JSON output."""

from __future__ import annotations

import json

import pytest

import wtc

pytestmark = pytest.mark.unit


def test_validate_ok(cli):
    code, out, _ = cli("validate", "specs/mobilenetv2.yaml")
    assert code == 0 and "ok" in out and "25 width groups" in " ".join(out.split())


def test_flops_json_matches_the_library(cli):
    code, out, _ = cli("flops", "specs/resnet18.yaml", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["macs"] == 1_814_073_344 and data["params"] == 11_689_512
    assert data["flops"] == 2 * data["macs"]


def test_flops_at_another_resolution(cli):
    code, out, _ = cli("flops", "specs/resnet18.yaml", "--resolution", "112", "--json")
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet18.yaml").scaled(resolution=112))
    assert code == 0 and json.loads(out)["macs"] == wtc.count_macs(graph)


def test_show_json_with_widths(cli, tmp_path):
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    w = wtc.uniform_widths(graph, multiplier=0.5)
    path = tmp_path / "w.json"
    wtc.save_widths(w, path)
    code, out, _ = cli("show", "specs/resnet20.yaml", "--widths", path, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["macs"] == w.macs
    assert {g["id"]: g["width"] for g in data["groups"] if g["kind"] in ("res", "block")} == \
        w.groups
    assert sum(s["macs"] for s in data["stages"]) == w.macs


def test_show_table(cli):
    code, out, _ = cli("show", "specs/resnet20.yaml")
    assert code == 0 and "stage2.res" in out and "40,813,184" in out


def test_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("validate", "show", "flops"):
        assert command in out
