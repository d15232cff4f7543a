"""`wtc export --onnx`: success (text and JSON), trained weights, and bad input as one message,
exit 2, no traceback and no file (not even a temporary one) left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import ROOT

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import wtc  # noqa: E402
from wtc.cli.main import app  # noqa: E402

pytestmark = pytest.mark.integration

SPEC = ROOT / "specs" / "tiny" / "resnet_tiny.yaml"
OTHER = ROOT / "specs" / "tiny" / "plain_tiny.yaml"
IMAGENET = ROOT / "specs" / "resnet18.yaml"


def run(*args):
    return CliRunner().invoke(app, ["export", *[str(a) for a in args]])


def assert_clean_failure(res, *needles: str, code: int = 2) -> None:
    text = res.stdout + res.stderr
    assert res.exit_code == code, text
    assert "Traceback" not in text, text
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    flat = " ".join(text.split())
    for n in needles:
        assert n in flat, text


def no_onnx_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".onnx", ".tmp")))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A `wtc train` run of the tiny ResNet at half width (so base widths do not fit it)."""
    from wtc.trainer import TrainConfig, train

    graph = wtc.compile_spec(wtc.load_spec(SPEC))
    half = wtc.uniform_widths(graph, multiplier=0.5)
    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = TrainConfig(data="synthetic", synthetic_size=128, synthetic_test_size=32, epochs=1,
                      batch_size=32, device="cpu", out=str(out))
    train(SPEC, half, cfg)
    assert (out / "checkpoint.pt").is_file() and (out / "widths.json").is_file()
    return out


def test_export_prints_a_summary(tmp_path):
    out = tmp_path / "m.onnx"
    res = run(SPEC, "--onnx", out)
    assert res.exit_code == 0, res.stdout + res.stderr
    flat = " ".join(res.stdout.split())
    assert f"wrote {out}" in flat
    for word in ("resnet_tiny", "MACs", "params", "opset 17", "max |diff|", "1x1x16x16"):
        assert word in flat, res.stdout
    assert out.is_file() and no_onnx_files(tmp_path) == ["m.onnx"]


def test_json_dynamic_batch_and_resolution(tmp_path):
    out = tmp_path / "m.onnx"
    res = run(IMAGENET, "--onnx", out, "--dynamic-batch", "--resolution", "64", "--opset", "18",
              "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    rep = json.loads(res.stdout)
    assert rep["input_shape"] == ["batch", 3, 64, 64] and rep["output_shape"] == ["batch", 1000]
    assert rep["opset"] == 18 and rep["resolution"] == 64 and rep["rel_diff"] <= 1e-4
    graph64 = wtc.compile_spec(wtc.load_spec(IMAGENET).scaled(resolution=64))
    assert rep["macs"] == wtc.count_macs(graph64) < wtc.count_macs(
        wtc.compile_spec(wtc.load_spec(IMAGENET)))
    assert rep["file_bytes"] == out.stat().st_size
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for b in (1, 7):
        y = sess.run(None, {"input": torch.randn(b, 3, 64, 64).numpy()})[0]
        assert y.shape == (b, 1000)


def test_trained_checkpoint_with_its_widths(run_dir, tmp_path):
    out = tmp_path / "trained.onnx"
    ck = run_dir / "checkpoint.pt"
    res = run(SPEC, "--checkpoint", ck, "--widths", run_dir / "widths.json", "--onnx", out,
              "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    rep = json.loads(res.stdout)
    assert rep["checkpoint"] == str(ck)
    assert rep["widths"] == json.loads((run_dir / "widths.json").read_text())["groups"]
    # without --widths the checkpoint's own widths are used
    res = run(SPEC, "--checkpoint", ck, "--onnx", tmp_path / "again.onnx", "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["widths_source"] == "checkpoint"


def test_checkpoint_that_does_not_fit_the_widths(run_dir, tmp_path):
    base = tmp_path / "base.json"
    graph = wtc.compile_spec(wtc.load_spec(SPEC))
    wtc.save_widths(wtc.base_widths(graph), base)
    out = tmp_path / "m.onnx"
    res = run(SPEC, "--checkpoint", run_dir / "checkpoint.pt", "--widths", base, "--onnx", out)
    assert_clean_failure(res, "checkpoint.pt", "layer 'stem.0.conv.weight'", "(4, 1, 3, 3)",
                         "(8, 1, 3, 3)", "widths")
    assert no_onnx_files(tmp_path) == []


def test_missing_and_corrupt_checkpoint(tmp_path):
    out = tmp_path / "m.onnx"
    res = run(SPEC, "--checkpoint", tmp_path / "nope.pt", "--onnx", out)
    assert_clean_failure(res, "nope.pt", "does not exist")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02 definitely not a checkpoint")
    res = run(SPEC, "--checkpoint", bad, "--onnx", out)
    assert_clean_failure(res, "bad.pt", "corrupt")
    assert no_onnx_files(tmp_path) == []


def test_widths_for_another_spec(tmp_path):
    w = tmp_path / "plain.json"
    wtc.save_widths(wtc.base_widths(wtc.compile_spec(wtc.load_spec(OTHER))), w)
    res = run(SPEC, "--widths", w, "--onnx", tmp_path / "m.onnx")
    assert_clean_failure(res, "plain.json", "resnet_tiny")
    assert no_onnx_files(tmp_path) == []


def test_unwritable_output_paths(tmp_path, monkeypatch):
    res = run(SPEC, "--onnx", tmp_path / "missing" / "m.onnx")
    assert_clean_failure(res, "cannot write", "does not exist")
    (tmp_path / "afile").write_text("x")
    res = run(SPEC, "--onnx", tmp_path / "afile" / "m.onnx")
    assert_clean_failure(res, "cannot write", "not a folder")
    assert (tmp_path / "afile").read_text() == "x"

    # a folder the OS refuses to create files in (root ignores modes: simulate the refusal)
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(tempfile, "mkstemp", refuse)
        res = run(SPEC, "--onnx", tmp_path / "m.onnx")
    assert_clean_failure(res, "cannot write", "Permission denied")
    assert no_onnx_files(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = run(SPEC, "--onnx", ro / "m.onnx")
        assert_clean_failure(res, "cannot write", "not writable")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_bad_options(tmp_path):
    res = run(SPEC, "--onnx", tmp_path / "m.onnx", "--opset", "3")
    assert_clean_failure(res, "opset 3")
    res = run(SPEC, "--onnx", tmp_path / "m.onnx", "--exporter", "jit")
    assert_clean_failure(res, "exporter 'jit'")
    res = run(SPEC, "--onnx", tmp_path / "m.onnx", "--resolution", "0")
    assert_clean_failure(res, "resolution")
    res = run(tmp_path / "nope.yaml", "--onnx", tmp_path / "m.onnx")
    assert_clean_failure(res, "nope.yaml")
    assert no_onnx_files(tmp_path) == []
