"""`wtc transfer` and `wtc proxy` in-process: outputs, source lookup by hash, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wtc
from tests.helpers import ROOT
from wtc.graph import compile_spec, count_macs
from wtc.spec import load_spec
from wtc.widths import load_widths, save_widths, uniform_widths, widths_from_groups
from wtc.widthtransfer import transfer

pytestmark = pytest.mark.unit


def optimized(graph):
    """Non-uniform widths: every other group at half its base."""
    return widths_from_groups(graph, {g: max(1, graph.groups[g].base // (2 if i % 2 else 1))
                                      for i, g in enumerate(graph.free_groups)}, method="test")


def test_proxy_then_transfer(cli, tmp_path):
    proxy = tmp_path / "proxy.yaml"
    code, out, err = cli("proxy", "specs/resnet20.yaml", "--width", "0.5", "--depths", "1,1,1",
                         "--resolution", "16", "-o", proxy)
    assert code == 0, err
    text = proxy.read_text()
    assert text.startswith("# resnet20_proxy: projected by `wtc proxy` from specs/resnet20.yaml")
    assert load_spec("specs/resnet20.yaml").structural_hash in text.splitlines()[0]
    spec = load_spec(proxy)
    assert spec == load_spec("specs/resnet20.yaml").scaled(
        width=0.5, depths=[1, 1, 1], resolution=16, name="resnet20_proxy")
    assert "wrote" in out and spec.structural_hash in out

    g = compile_spec(spec)
    w = optimized(g)
    save_widths(w, tmp_path / "w.json")
    target = compile_spec(load_spec("specs/resnet56.yaml"))
    out_json = tmp_path / "out.json"
    # no --source: the proxy next to the widths file has the recorded hash
    code, out, err = cli("transfer", tmp_path / "w.json", "specs/resnet56.yaml",
                         "--stacking", "average", "-o", out_json)
    assert code == 0, err
    words = " ".join(out.split())  # rich wraps long paths at the terminal width
    assert "found by its hash" in words and "stage3.block8.conv1" in out and "MACs" in out
    got = load_widths(out_json, target)
    want = transfer(w, g, target, stacking="average")
    assert got.groups == want.widths.groups
    assert got.provenance["method"] == "transfer" and got.provenance["rule"] == "average"
    assert got.provenance["source"]["file"] == str(proxy)
    assert got.provenance["source"]["widths_file"] == str(tmp_path / "w.json")
    assert abs(got.macs - count_macs(target)) <= 0.01 * count_macs(target)


def test_transfer_json_report_and_budget(cli, tmp_path):
    s = compile_spec(load_spec("specs/resnet20.yaml"))
    t = compile_spec(load_spec("specs/resnet56.yaml"))
    w = optimized(s)
    save_widths(w, tmp_path / "w.json")
    code, out, err = cli("transfer", tmp_path / "w.json", "specs/resnet56.yaml", "--source",
                         "specs/resnet20.yaml", "--target-macs", "0.5x", "--stacking",
                         "interpolate", "--json", "-o", tmp_path / "o.json")
    assert code == 0, err
    report = json.loads(out)
    want = transfer(w, s, t, stacking="interpolate", target_macs=round(0.5 * count_macs(t)))
    assert report["target_macs"] == round(0.5 * count_macs(t)) == want.target_macs
    assert report["macs"] == want.macs
    assert {r["group"]: r["width"] for r in report["groups"]} == want.widths.groups
    assert {r["group"]: r["ratio"] for r in report["groups"]} == \
        {g: m.ratio for g, m in want.mapping.items()}
    assert report["groups"][1]["sources"] == ["stage1.block0.conv1"]
    assert report["source"]["spec"] == "resnet20" and report["unmatched"] == []
    assert report["output"] == str(tmp_path / "o.json")


def test_transfer_finds_the_source_in_specs(cli, tmp_path, monkeypatch):
    s = compile_spec(load_spec("specs/resnet20_fmnist.yaml"))
    save_widths(optimized(s), tmp_path / "w.json")
    monkeypatch.chdir(ROOT)
    code, out, err = cli("transfer", tmp_path / "w.json", "specs/resnet56_fmnist.yaml",
                         "-o", tmp_path / "o.json")
    assert code == 0, err
    assert "specs/resnet20_fmnist.yaml" in out.replace("\n", "")


def test_stage_map_and_keep_unmatched(cli, tmp_path):
    s = compile_spec(load_spec("specs/resnet20.yaml"))
    save_widths(uniform_widths(s, multiplier=0.5), tmp_path / "w.json")
    code, out, err = cli("transfer", tmp_path / "w.json", "specs/resnet18.yaml", "--source",
                         "specs/resnet20.yaml", "--stage-map",
                         "layer1=stage1,layer2=stage2,layer3=stage3,layer4=stage3",
                         "-o", tmp_path / "o.json", "--json")
    assert code == 0, err
    assert json.loads(out)["stage_map"]["layer4"] == "stage3"
    # basic → bottleneck with --keep-unmatched: written, the unmatched groups reported
    code, out, err = cli("transfer", tmp_path / "w.json", "specs/resnet50.yaml", "--source",
                         "specs/resnet20.yaml", "--stage-map",
                         "layer1=stage1,layer2=stage2,layer3=stage3,layer4=stage3",
                         "--keep-unmatched", "-o", tmp_path / "o50.json")
    assert code == 0, err
    assert "unmatched" in out and "layer1.res" in out
    assert (tmp_path / "o50.json").exists()


def expect_failure(cli, tmp_path, args, words):
    out_file = tmp_path / "never.json"
    code, out, err = cli(*args, "-o", out_file)
    assert code == 2, (out, err)
    assert "Traceback" not in err + out and "error:" in err
    flat = " ".join(err.split())
    for word in words:
        assert word in flat, (word, flat)
    assert not out_file.exists()
    assert not list(tmp_path.glob(".never.json*"))


@pytest.fixture
def r20_widths(tmp_path):
    s = compile_spec(load_spec("specs/resnet20.yaml"))
    save_widths(optimized(s), tmp_path / "w.json")
    return tmp_path / "w.json"


def test_fail_stage_counts(cli, tmp_path, r20_widths):
    expect_failure(cli, tmp_path, ["transfer", r20_widths, "specs/resnet18.yaml", "--source",
                                   "specs/resnet20.yaml"],
                   ["stage1, stage2, stage3", "layer1, layer2, layer3, layer4", "stage map"])


def test_fail_bad_stage_map(cli, tmp_path, r20_widths):
    base = ["transfer", r20_widths, "specs/resnet18.yaml", "--source", "specs/resnet20.yaml"]
    expect_failure(cli, tmp_path, [*base, "--stage-map", "layer1=stage7"],
                   ["unknown source stage", "'stage7'", "stage1, stage2, stage3"])
    expect_failure(cli, tmp_path, [*base, "--stage-map", "layer1:stage1"],
                   ["cannot read stage map entry 'layer1:stage1'"])


def test_fail_role_with_no_counterpart(cli, tmp_path):
    s = compile_spec(load_spec("specs/tiny/resnet_tiny.yaml"))
    save_widths(optimized(s), tmp_path / "w.json")
    expect_failure(cli, tmp_path, ["transfer", tmp_path / "w.json",
                                   "specs/tiny/bottleneck_tiny.yaml", "--source",
                                   "specs/tiny/resnet_tiny.yaml"],
                   ["'stage1.res'", "role 'conv3' in stage1", "--keep-unmatched"])


def test_fail_no_source_found(cli, tmp_path):
    spec = load_spec("specs/resnet20.yaml").scaled(width=0.75)  # in no file
    save_widths(optimized(compile_spec(spec)), tmp_path / "w.json")
    expect_failure(cli, tmp_path, ["transfer", tmp_path / "w.json", "specs/resnet20.yaml"],
                   [spec.structural_hash, "--source SPEC"])


def test_fail_wrong_source(cli, tmp_path, r20_widths):
    expect_failure(cli, tmp_path, ["transfer", r20_widths, "specs/resnet56.yaml", "--source",
                                   "specs/resnet56.yaml"],
                   ["was made for spec 'resnet20'", "--source specs/resnet56.yaml"])


def test_fail_bad_options(cli, tmp_path, r20_widths):
    base = ["transfer", r20_widths, "specs/resnet56.yaml", "--source", "specs/resnet20.yaml"]
    expect_failure(cli, tmp_path, [*base, "--stacking", "stack"],
                   ["unknown stacking rule 'stack'", "interpolate"])
    expect_failure(cli, tmp_path, [*base, "--target-macs", "lots"], ["cannot read MACs target"])
    expect_failure(cli, tmp_path, [*base, "--target-macs", "10"], ["below the smallest network"])
    expect_failure(cli, tmp_path, ["transfer", tmp_path / "missing.json", "specs/resnet56.yaml"],
                   ["no such widths file"])


def test_proxy_failures(cli, tmp_path):
    expect_failure(cli, tmp_path, ["proxy", "specs/resnet20.yaml", "--depths", "1,1"],
                   ["2 depths given for 3 stages"])
    expect_failure(cli, tmp_path, ["proxy", "specs/resnet20.yaml", "--depths", "1,x,1"],
                   ["cannot read --depths"])
    expect_failure(cli, tmp_path, ["proxy", "specs/resnet20.yaml"], ["nothing to project"])
    expect_failure(cli, tmp_path, ["proxy", "specs/resnet20.yaml", "--width", "-1"],
                   ["--width", "must be above 0"])


def test_proxy_json(cli, tmp_path):
    code, out, err = cli("proxy", "specs/mobilenetv2_cifar.yaml", "--depth", "0.5", "--name",
                         "mbv2_half", "--json", "-o", tmp_path / "p.yaml")
    assert code == 0, err
    data = json.loads(out)
    spec = load_spec(tmp_path / "p.yaml")
    assert data["hash"] == spec.structural_hash and spec.name == "mbv2_half"
    assert data["macs"] == count_macs(compile_spec(spec)) < data["source"]["macs"]
    assert [s.depth for s in spec.stages] == [1, 1, 2, 2, 2, 2, 1]
    assert Path(data["output"]) == tmp_path / "p.yaml"


def test_help_lists_transfer_and_proxy(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "transfer" in out and "proxy" in out
    assert callable(wtc.transfer)
