"""`wtc train` / `wtc eval`: success, and bad input as one message, exit 2, no partial output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import ROOT, without_fashion_mnist

SPEC = ROOT / "specs" / "tiny" / "resnet_tiny.yaml"
OTHER = ROOT / "specs" / "tiny" / "plain_tiny.yaml"

pytest.importorskip("wtc.nn")
if not SPEC.is_file():  # pragma: no cover
    pytest.skip(f"{SPEC} not written yet", allow_module_level=True)

from wtc.cli.main import app  # noqa: E402

pytestmark = pytest.mark.integration

SYN = ["--data", "synthetic", "--batch-size", "32", "--device", "cpu"]


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_clean_failure(res, *needles: str) -> None:
    text = res.output + (res.stderr if hasattr(res, "stderr") else "")
    assert res.exit_code == 2, text
    assert "Traceback" not in text
    for n in needles:
        assert n in " ".join(text.split()), text


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = out.parent / "train.yaml"
    cfg.write_text("synthetic_size: 256\nsynthetic_test_size: 64\nepochs: 2\n")
    res = run("train", SPEC, *SYN, "--config", cfg, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["epochs"] == 2 and summary["train_macs"] > 0 and summary["num_classes"] == 4
    return out


def test_train_writes_a_complete_run(trained):
    names = sorted(p.name for p in trained.iterdir())
    assert names == ["checkpoint.pt", "metrics.jsonl", "spec.yaml", "summary.json",
                     "widths.json"]
    assert len((trained / "metrics.jsonl").read_text().splitlines()) == 2


def test_eval_reads_the_checkpoint(trained):
    res = run("eval", SPEC, "--checkpoint", trained / "checkpoint.pt", *SYN, "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    summary = json.loads((trained / "summary.json").read_text())
    assert got["images"] == 512  # default synthetic test size: eval has no --config here
    assert got["top1"] * 512 == pytest.approx(round(got["top1"] * 512))  # a count of images
    # on the run's own test set (its --config), eval gives the run's final test top-1
    res = run("eval", SPEC, "--checkpoint", trained / "checkpoint.pt", *SYN, "--config",
              trained.parent / "train.yaml", "--json")
    assert res.exit_code == 0, res.output
    same = json.loads(res.stdout)
    assert same["images"] == 64 and same["top1"] == pytest.approx(summary["top1"], abs=1e-9)


def test_missing_dataset_root(tmp_path):
    out = tmp_path / "run"
    res = run("train", SPEC, "--data", "cifar10", "--data-root", tmp_path / "nowhere",
              "--out", out)
    assert_clean_failure(res, str(tmp_path / "nowhere"), "cifar-10-batches-py")
    assert not out.exists()
    res = run("train", SPEC, "--data", "imagefolder", "--data-root", tmp_path, "--out", out)
    assert_clean_failure(res, "train/")
    assert not out.exists()
    res = run("train", SPEC, "--out", out)
    assert_clean_failure(res, "--data")
    res = run("train", SPEC, *SYN, "--classes", "a,b", "--out", out)
    assert_clean_failure(res, "--classes")
    assert not out.exists()


def test_fashion_mnist_absent(tmp_path, monkeypatch):
    empty = without_fashion_mnist(tmp_path, monkeypatch)  # a root with no data: download fails
    res = run("train", SPEC, "--data", "fashion-mnist", "--data-root", empty,
              "--out", tmp_path / "run")
    assert_clean_failure(res, "apt-get install dataset-fashion-mnist")
    assert not (tmp_path / "run").exists()


def test_corrupt_checkpoint(tmp_path, trained):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"\x00garbage")
    res = run("eval", SPEC, "--checkpoint", bad, *SYN)
    assert_clean_failure(res, str(bad))
    res = run("eval", SPEC, "--checkpoint", tmp_path / "missing.pt", *SYN)
    assert_clean_failure(res, "missing.pt", "does not exist")


def test_mismatched_checkpoint(tmp_path, trained):
    import wtc

    res = run("eval", OTHER, "--checkpoint", trained / "checkpoint.pt", "--widths",
              OTHER.with_suffix(".json"), *SYN)  # a widths file that does not exist
    assert res.exit_code == 2
    graph = wtc.compile_spec(wtc.load_spec(SPEC))
    half = wtc.uniform_widths(graph, target_macs=wtc.count_macs(graph, wtc.base_widths(graph)) // 3)
    wpath = tmp_path / "half.widths.json"
    wtc.save_widths(half, wpath)
    res = run("eval", SPEC, "--checkpoint", trained / "checkpoint.pt", "--widths", wpath, *SYN)
    assert_clean_failure(res, "checkpoint.pt", "other widths")
    # the same weights under another spec: the spec hash disagrees
    other_ck = tmp_path / "other" / "checkpoint.pt"
    other_ck.parent.mkdir()
    other_ck.write_bytes((trained / "checkpoint.pt").read_bytes())
    res = run("eval", OTHER, "--checkpoint", other_ck, *SYN)
    assert_clean_failure(res, "different spec")


def test_resume_continues_and_refuses_corrupt(tmp_path):
    out = tmp_path / "run"
    args = ["train", SPEC, *SYN, "--epochs", "2", "--out", out]
    assert run(*args, "--epochs", "1").exit_code == 0
    res = run(*args, "--resume")  # planned 1 epoch; the second run extends to 2
    assert res.exit_code == 0, res.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    res = run(*args, "--resume")
    assert_clean_failure(res, "already finished")
    (out / "checkpoint.pt").write_bytes(b"corrupt")
    before = (out / "summary.json").read_text()
    res = run(*args, "--epochs", "3", "--resume")
    assert_clean_failure(res, "checkpoint.pt")
    assert (out / "summary.json").read_text() == before
