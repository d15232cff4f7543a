"""Outputs that cannot be written (issue 22, class 7): a folder without permission or a full
disk gives one message naming the path (`WriteError`, exit 2), no traceback, and no partial run
folder. The full disk is simulated by a file whose writes fail with ENOSPC; no permission by a
mkdir that fails with EACCES (these tests run as root, who may write anywhere)."""

from __future__ import annotations

import builtins
import errno
import json
import os

import pytest

from tests.helpers import ROOT, refused, results, tree, write_plan
from wtc.experiment import load_plan, run_experiment

pytestmark = pytest.mark.integration

TINY = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")
NO_SPACE = os.strerror(errno.ENOSPC)


class FullDisk:
    """A binary file whose writes raise ENOSPC (what a full disk does mid-write)."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, NO_SPACE)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.fixture
def full_disk(monkeypatch):
    """Every atomic write (widths, specs, checkpoints, reports, artifacts) and every ledger
    append fails with ENOSPC."""
    real_fdopen, real_open = os.fdopen, builtins.open
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))

    def ledger_open(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        return FullDisk(f) if "a" in mode else f

    import wtc.experiment.ledger as ledger

    monkeypatch.setattr(ledger, "open", ledger_open, raising=False)


@pytest.fixture
def no_permission(monkeypatch, tmp_path):
    """mkdir under tmp_path/ro fails as a read-only folder does for a normal user."""
    from pathlib import Path

    ro = tmp_path / "ro"
    ro.mkdir()
    real = Path.mkdir

    def mkdir(self, *a, **k):
        if ro in self.parents:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    return ro


def test_train_on_a_full_disk_names_the_file_and_leaves_no_run_folder(cli, tmp_path,
                                                                      full_disk):
    run = tmp_path / "runs" / "r1"
    refused(cli, "train", TINY, "--data", "synthetic", "--epochs", "1", "--out", run,
            expect=["cannot write", str(run / "widths.json"), NO_SPACE])
    assert list(tmp_path.iterdir()) == []


def test_train_into_a_folder_without_permission(cli, tmp_path, no_permission):
    run = no_permission / "run"
    refused(cli, "train", TINY, "--data", "synthetic", "--epochs", "1", "--out", run,
            expect=["cannot write", str(run), "Permission denied"])
    assert list(no_permission.iterdir()) == []


def test_experiment_on_a_full_disk_leaves_no_experiment_folder(cli, tmp_path, full_disk):
    plan = write_plan(tmp_path / "plan.yaml")
    out = tmp_path / "exp" / "out"
    before = tree(tmp_path)
    refused(cli, "experiment", plan, "--out", out, "--threads", "1",
            expect=["cannot write", str(out / "ledger.jsonl"), NO_SPACE])
    assert tree(tmp_path) == before and not (tmp_path / "exp").exists()


def test_experiment_into_a_folder_without_permission(cli, tmp_path, no_permission):
    plan = write_plan(tmp_path / "plan.yaml")
    refused(cli, "experiment", plan, "--out", no_permission / "out",
            expect=["cannot write", str(no_permission / "out"), "Permission denied"])
    assert list(no_permission.iterdir()) == []


def test_search_and_proxy_on_a_full_disk(cli, tmp_path, full_disk):
    refused(cli, "search", TINY, "--method", "uniform", "-t", "0.5x", "-o", tmp_path / "w.json",
            expect=["cannot write", str(tmp_path / "w.json"), NO_SPACE])
    refused(cli, "proxy", TINY, "--width", "0.5", "-o", tmp_path / "p.yaml",
            expect=["cannot write", str(tmp_path / "p.yaml"), NO_SPACE])
    assert list(tmp_path.iterdir()) == []  # no temporary files either


def test_a_disk_that_fills_mid_experiment_keeps_the_ledger_resumable(tmp_path, monkeypatch):
    """The third ledger line fails: the two recorded units stay, the rerun finishes the plan
    with the results an uninterrupted run gives."""
    from wtc.errors import WriteError
    from wtc.experiment.ledger import Ledger

    plan = load_plan(write_plan(tmp_path / "plan.yaml"))
    out = tmp_path / "out"
    real, calls = Ledger.append, []

    def append(self, row):
        calls.append(row)
        if len(calls) == 3:
            with open(self.path, "a") as f:  # half a line reached the disk, then ENOSPC
                f.write(json.dumps(row)[:40])
            raise WriteError(self.path, OSError(errno.ENOSPC, NO_SPACE))
        real(self, row)

    monkeypatch.setattr(Ledger, "append", append)
    with pytest.raises(WriteError, match=r"ledger\.jsonl"):
        run_experiment(plan, out, threads=1)
    monkeypatch.setattr(Ledger, "append", real)
    assert len(Ledger(out).units()) == 1  # the run line and one unit
    run_experiment(plan, out, threads=1)
    full = tmp_path / "full"
    run_experiment(plan, full, threads=1)
    assert results(out) == results(full)


def test_a_search_run_dir_without_permission(cli, tmp_path, no_permission):
    refused(cli, "search", TINY, "--method", "morphnet", "--epochs", "1", "--data", "synthetic",
            "--run-dir", no_permission / "run", "-o", tmp_path / "w.json",
            expect=["cannot write", str(no_permission / "run"), "Permission denied"])
    assert not (tmp_path / "w.json").exists() and list(no_permission.iterdir()) == []


def test_train_resume_with_nothing_to_resume_leaves_no_run_folder(cli, tmp_path):
    run = tmp_path / "run"
    refused(cli, "train", TINY, "--data", "synthetic", "--epochs", "1", "--resume", "--out", run,
            expect=[str(run / "checkpoint.pt"), "does not exist"])
    assert not run.exists()
