"""The whole product on a tiny spec, through the CLI: proxy → search → transfer → train →
eval → export. Synthetic data keeps it to seconds; each step reads the previous step's files."""

from __future__ import annotations

import json

import onnx
import pytest

pytestmark = pytest.mark.integration


def test_proxy_search_transfer_train_export(tmp_path, cli):
    target = "specs/tiny/resnet_tiny.yaml"
    proxy = tmp_path / "proxy.yaml"
    code, out, err = cli("proxy", target, "--width", "0.5", "--depths", "1,1",
                         "--resolution", "12", "-o", proxy)
    assert code == 0, err
    assert proxy.read_text().startswith("# resnet_tiny_proxy: projected by `wtc proxy` from")

    found = tmp_path / "proxy.widths.json"
    code, out, err = cli("search", proxy, "--method", "morphnet", "--data", "synthetic",
                         "--epochs", "1", "--fraction", "1.0", "--threads", "1",
                         "--set", "strength=3", "-o", found, "--json")
    assert code == 0, err
    searched = json.loads(found.read_text())
    assert searched["provenance"]["method"] == "morphnet"
    assert searched["provenance"]["cost"]["train_macs"] > 0

    moved = tmp_path / "target.widths.json"
    code, out, err = cli("transfer", found, target, "--source", proxy, "--stacking", "average",
                         "-o", moved, "--json")
    assert code == 0, err
    report = json.loads(out)
    budget = report["target_macs"]
    assert abs(report["macs"] - budget) / budget < 0.01

    run = tmp_path / "run"
    code, out, err = cli("train", target, "--widths", moved, "--data", "synthetic",
                         "--epochs", "1", "--out", run, "--json")
    assert code == 0, err
    assert (run / "checkpoint.pt").is_file()
    trained_top1 = json.loads((run / "summary.json").read_text())["top1"]

    code, out, err = cli("eval", target, "--widths", moved, "--checkpoint",
                         run / "checkpoint.pt", "--data", "synthetic", "--json")
    assert code == 0, err
    # the same weights on the same test set: the top-1 the training recorded at its end
    assert json.loads(out)["top1"] == trained_top1

    model = tmp_path / "model.onnx"
    code, out, err = cli("export", target, "--widths", moved, "--checkpoint",
                         run / "checkpoint.pt", "--onnx", model, "--json")
    assert code == 0, err
    assert json.loads(out)["max_abs_diff"] <= 1e-4 * max(1.0, json.loads(out)["output_scale"])
    onnx.checker.check_model(onnx.load(str(model)))
