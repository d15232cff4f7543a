"""`wtc search`: output file, comparison table, and clean failures (exit 2, no file)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT
from wtc.cli.search import DEFAULT_SPEC, resolve_spec
from wtc.graph import compile_spec, count_macs
from wtc.spec import load_spec
from wtc.widths import base_widths, load_widths

pytestmark = pytest.mark.integration

TINY = ROOT / "specs" / "tiny" / "resnet_tiny.yaml"
SYNTH = ["--data", "synthetic", "--epochs", "1", "--fraction", "0.25", "--threads", "1"]


def graph():
    return compile_spec(load_spec(TINY))


def test_uniform_at_1x_writes_the_base_widths(cli, tmp_path):
    out = tmp_path / "w.json"
    code, stdout, stderr = cli("search", TINY, "--method", "uniform", "-o", out)
    assert code == 0, stderr
    g = graph()
    assert load_widths(out, g).groups == base_widths(g).groups
    assert "uniform" in stdout and "MACs" in stdout


def test_morphnet_writes_widths_and_compares_with_uniform(cli, tmp_path):
    out = tmp_path / "w.json"
    code, stdout, stderr = cli("search", TINY, *SYNTH, "--target-macs", "0.5x",
                               "--set", "strength=3", "-o", out)
    assert code == 0, stderr
    g = graph()
    w = load_widths(out, g)
    target = round(0.5 * count_macs(g))
    assert w.target_macs == target and abs(w.macs - target) <= 0.01 * target
    assert w.provenance["method"] == "morphnet"
    assert w.provenance["settings"]["strength"] == 3
    assert w.provenance["data"]["fraction"] == 0.25
    assert w.provenance["cost"]["train_macs"] > 0
    for word in ("group", "base", "uniform", "morphnet", "ratio", "stage2.res"):
        assert word in stdout
    assert "held-out top-1 of these widths" in stdout and "(chance 25%)" in stdout


def test_a_ladder_that_pruned_nothing_says_its_widths_are_uniform(cli, tmp_path):
    out = tmp_path / "w.json"  # λ far too weak to prune: every rung keeps the base structure
    code, stdout, stderr = cli("search", TINY, *SYNTH, "--target-macs", "0.5x", "--set",
                               "strength=1e-6", "--set", "ladder=2", "--set", "ladder_factor=2",
                               "--val-split", "0.25", "-o", out)
    assert code == 0, stderr
    text = " ".join(stdout.split())
    assert "rung 0: λ" in text and "rung 1: λ" in text and "<- chosen" in text
    assert "the weakest λ won and pruned (almost) nothing" in text
    assert "these are the uniform widths at this budget" in text


def test_settings_file_and_json_output(cli, tmp_path):
    cfg = tmp_path / "m.yaml"
    cfg.write_text("strength: 2.5\nthreshold: 0.02\n")
    out = tmp_path / "w.json"
    code, stdout, stderr = cli("search", TINY, *SYNTH, "--config", cfg, "--set",
                               "threshold=0.05", "--json", "-o", out)
    assert code == 0, stderr
    data = json.loads(stdout)
    settings = data["widths"]["provenance"]["settings"]
    assert settings["strength"] == 2.5 and settings["threshold"] == 0.05
    assert data["uniform"]["macs"] > 0 and out.is_file()


@pytest.mark.parametrize("args,message", [
    (["--method", "nope"], "unknown search method 'nope'"),
    (["--target-macs", "1000"], "below the smallest network"),
    (["--target-macs", "huge"], "cannot read MACs target"),
    (["--set", "strenght=2"], "strenght: unknown setting"),
    (["--set", "strength=-1"], "strength"),
    (["--set", "strength"], "--set takes key=value"),
    (["--data", "cifar10"], "cifar10 needs --data-root"),
    (["--data", "mnist"], "bad data settings"),
    (["--fraction", "0"], "fraction"),
    (["--epochs", "0"], "epochs"),
])
def test_bad_input_exits_2_before_training_without_output(cli, tmp_path, monkeypatch, args,
                                                           message):
    import wtc.optimizers.training as tl

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(tl, "fit", no_training)
    out = tmp_path / "w.json"
    code, stdout, stderr = cli("search", TINY, *SYNTH, *args, "-o", out)
    assert code == 2, (stdout, stderr)
    assert message in stderr
    assert "Traceback" not in stderr + stdout
    assert not out.exists()


def test_bad_settings_file_and_output_folder(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    code, _, stderr = cli("search", TINY, "--config", bad, "-o", tmp_path / "w.json")
    assert code == 2 and "mapping of method settings" in stderr
    code, _, stderr = cli("search", TINY, "--config", tmp_path / "missing.yaml")
    assert code == 2 and "cannot read settings file" in stderr
    code, _, stderr = cli("search", TINY, "--method", "uniform", "-o", tmp_path / "no" / "w.json")
    assert code == 2 and "does not exist" in stderr
    code, _, stderr = cli("search", tmp_path / "nospec.yaml", "--method", "uniform")
    assert code == 2 and "does not exist" in stderr
    assert not list(tmp_path.glob("*.json"))


def test_default_spec_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = resolve_spec(None)
    assert path == ROOT / DEFAULT_SPEC
    assert load_spec(path).name == "resnet20_fmnist"


def test_default_spec_missing_is_a_clear_error(cli, tmp_path, monkeypatch):
    import wtc.cli.search as cs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cs, "DEFAULT_SPEC", cs.Path("specs") / "gone.yaml")
    code, _, stderr = cli("search", "--method", "uniform")
    assert code == 2 and "no SPEC given" in stderr and "gone.yaml" in stderr


def test_default_search_uniform_writes_widths_json_in_the_current_folder(cli, tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli("search", "--method", "uniform", "--target-macs", "0.5x")
    assert code == 0, stderr
    g = compile_spec(load_spec(ROOT / DEFAULT_SPEC))
    w = load_widths(tmp_path / "widths.json", g)
    assert abs(w.macs - 0.5 * count_macs(g)) <= 0.01 * 0.5 * count_macs(g)
    assert "resnet20_fmnist" in stdout
