"""Ledgers as hostile input (issue 22, classes 1 and 6): paths that leave their folder are
refused before anything is written; a damaged line is skipped with a warning naming it, its
unit reruns, the good lines are kept, and `wtc report` still rebuilds; a driver killed in the
middle of a ledger write resumes to the ledger an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import refused, results, tree, write_plan
from wtc.experiment import Ledger, load_plan, run_experiment, write_report
from wtc.paths import PathError, contained

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """One uninterrupted run of the tiny plan of tests/test_experiment.py."""
    folder = tmp_path_factory.mktemp("full")
    plan_file = write_plan(folder / "plan.yaml")
    out = folder / "out"
    run_experiment(load_plan(plan_file), out, threads=1)
    return plan_file, out


def copy_of(out: Path, to: Path) -> Path:
    shutil.copytree(out, to)
    return to


def rewrite(folder: Path, change) -> None:
    """Apply `change(row) -> str | None` (a replacement line, or None to keep it) to every
    line of folder/ledger.jsonl."""
    path = folder / "ledger.jsonl"
    lines = []
    for raw in path.read_text().splitlines():
        new = change(json.loads(raw))
        lines.append(raw if new is None else new)
    path.write_text("\n".join(lines) + "\n")


def with_artifact_paths(folder: Path, rel: str) -> None:
    def change(row):
        if row.get("artifacts"):
            row["artifacts"] = dict.fromkeys(row["artifacts"], rel)
            return json.dumps(row)
        return None

    rewrite(folder, change)


@pytest.mark.parametrize("rel", ["../../evil-weights.pt", "artifacts/../../../evil-weights.pt",
                                 "ABSOLUTE"])
def test_reuse_of_a_ledger_whose_artifacts_climb_out_is_refused_and_writes_nothing(
        full, cli, tmp_path, rel):
    plan_file, done = full
    source = copy_of(done, tmp_path / "a" / "b" / "source")
    if rel == "ABSOLUTE":
        rel = str(tmp_path / "a" / "evil-weights.pt")
    with_artifact_paths(source, rel)
    out = tmp_path / "x" / "y" / "out"
    before = tree(tmp_path)
    refused(cli, "experiment", plan_file, "--out", out, "--reuse", source, "--threads", "1",
            expect=("--reuse", str(source), "outside its folder", "line "))
    assert tree(tmp_path) == before
    assert not out.exists() and not list(tmp_path.rglob("evil-weights.pt"))


def test_reuse_of_a_ledger_whose_artifacts_are_symlinks_out_is_refused(full, cli, tmp_path):
    plan_file, done = full
    source = copy_of(done, tmp_path / "source")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"not yours")
    for art in (source / "artifacts").iterdir():
        art.unlink()
        art.symlink_to(secret)
    out = tmp_path / "out"
    before = tree(tmp_path)
    refused(cli, "experiment", plan_file, "--out", out, "--reuse", source, "--threads", "1",
            expect=("artifact", "outside", "symlink"))
    assert tree(tmp_path) == before and not out.exists()


def test_an_own_ledger_with_escaping_artifacts_reruns_those_units_inside_the_folder(
        full, tmp_path):
    plan_file, done = full
    out = copy_of(done, tmp_path / "deep" / "out")
    with_artifact_paths(out, "../../evil-weights.pt")
    summary = run_experiment(load_plan(plan_file), out, threads=1)
    assert summary.ran and all(u.startswith("train/") for u in summary.ran)
    assert any("artifact path" in w and "ledger.jsonl:" in w for w in summary.warnings)
    assert not list(tmp_path.rglob("evil-weights.pt"))
    assert results(out) == results(done)


@pytest.mark.parametrize("where", ["work", "work/0123456789abcdef"])
def test_a_work_folder_that_is_a_symlink_out_is_refused_before_any_unit_runs(
        full, cli, tmp_path, where):
    """An interrupted unit's checkpoints live in OUT/work/HASH/ and resume from there: a
    symlink out of OUT (a committed or copied folder, say) would have them written elsewhere."""
    _, done = full
    out = copy_of(done, tmp_path / "out")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = out / where
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(elsewhere, target_is_directory=True)
    other = write_plan(tmp_path / "seeds.yaml", seeds=[7])  # units to run, were it to run
    before = tree(tmp_path)
    refused(cli, "experiment", other, "--out", out, "--threads", "1",
            expect=("--out", "work folder", "outside", "symlink"))
    assert tree(tmp_path) == before and not list(elsewhere.iterdir())


def test_a_report_from_a_ledger_naming_a_method_like_a_path_writes_nothing_outside(
        full, cli, tmp_path):
    _, done = full
    out = copy_of(done, tmp_path / "deep" / "out")

    def change(row):
        if row["type"] == "run":
            row["methods"] = {"../../../evil": {}}
            for r in row["rows"]:
                r["method"] = "../../../evil"
            return json.dumps(row)
        return None

    rewrite(out, change)
    refused(cli, "report", out, expect=("records no experiment run",))
    assert not list(tmp_path.rglob("*evil*"))


def test_a_curve_point_naming_a_method_like_a_path_writes_nothing_outside(full, cli, tmp_path):
    _, done = full
    out = copy_of(done, tmp_path / "deep" / "out")

    def change(row):
        if row["type"] == "run":
            unit = "search/morphnet/target"
            row["curve"] = [{"method": "../../../evil", "source": "target", "epochs": 1,
                             "search": unit, "widths": unit}]
            return json.dumps(row)
        return None

    rewrite(out, change)
    refused(cli, "report", out, expect=["records no experiment run"])
    assert not list(tmp_path.rglob("*evil*"))


def test_contained():
    assert contained("/a", "artifacts/x.pt", "it") == Path("/a/artifacts/x.pt")
    for bad in ("../x", "/etc/passwd", "a/../../x", "", "a\0b", "a//b", None, 3):
        with pytest.raises(PathError, match="it"):
            contained("/a", bad, "it")


def test_a_damaged_ledger_resumes_rerunning_only_the_damaged_units(full, cli, tmp_path):
    """Binary garbage, a line missing keys, a non-number top-1 and a torn last line: each is
    skipped with a warning naming its line, exactly those units rerun, the report rebuilds."""
    plan_file, done = full
    out = copy_of(done, tmp_path / "out")
    damaged = {"eval/uniform/seed0": "garbage", "train/morphnet/direct/seed1": "missing",
               "eval/morphnet/half/seed1": "top1"}
    numbers = {}
    path = out / "ledger.jsonl"
    lines = path.read_bytes().splitlines()
    for i, raw in enumerate(lines):
        row = json.loads(raw)
        how = damaged.get(row.get("unit"))
        if how == "garbage":
            lines[i] = b"\x00\xff\xfe garbage \x89PNG\r\x1a"
        elif how == "missing":
            del row["input_hash"]
            lines[i] = json.dumps(row).encode()
        elif how == "top1":
            row["outputs"]["top1"] = "high"
            lines[i] = json.dumps(row).encode()
        if how:
            numbers[row["unit"]] = i + 1
    path.write_bytes(b"\n".join(lines) + b'\n{"type": "unit", "unit": "eval/unif')
    code, stdout, stderr = cli("experiment", plan_file, "--out", out, "--threads", "1",
                               "--json", "--no-report")
    assert code == 0, stderr
    res = json.loads(stdout)
    assert sorted(res["ran"] + list(res["reused"])) == sorted(damaged)
    for unit, n in numbers.items():
        assert f"ledger.jsonl:{n}: skipped" in " ".join(stderr.split()), (unit, stderr)
    assert "torn last line" in stderr and "Traceback" not in stderr
    assert results(out) == results(done)
    code, stdout, stderr = cli("report", out, "--json")
    assert code == 0, stderr
    assert "skipped a damaged ledger line" in stderr
    report = json.loads(stdout)
    assert report["complete"]
    assert [r["top1"] for r in report["rows"]] == [r["top1"] for r in write_report(done)["rows"]]


KILLER = """
import os, signal, sys
from wtc.experiment import load_plan, run_experiment
from wtc.experiment.ledger import Ledger
writes = []
real = Ledger.append
def append(self, row):
    writes.append(row)
    if len(writes) == int(sys.argv[3]):  # half of this line reaches the disk, then kill -9
        line = (__import__("json").dumps(row) + "\\n").encode()
        with open(self.path, "ab") as f:
            f.write(line[: len(line) // 2])
            f.flush()
            os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, row)
Ledger.append = append
run_experiment(load_plan(sys.argv[1]), sys.argv[2], threads=1)
"""


def test_kill_9_in_the_middle_of_a_ledger_write_then_rerun_gives_the_uninterrupted_ledger(
        full, tmp_path):
    plan_file, done = full
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(plan_file), str(out), "5"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert not (out / "ledger.jsonl").read_bytes().endswith(b"\n")  # torn mid-line
    rest = run_experiment(load_plan(plan_file), out, threads=1)
    assert any("torn last line" in w for w in rest.warnings)
    assert results(out) == results(done)
    ledger = Ledger(out)
    assert len(ledger.units()) == len(Ledger(done).units()) and ledger.warnings() == []


def test_report_prints_its_text_as_is_and_refuses_escape_sequences_from_a_ledger(
        full, cli, tmp_path):
    _, done = full
    code, stdout, err = cli("report", done)
    assert code == 0, err
    assert "![widths_morphnet](figures/widths_morphnet.png)" in stdout  # not eaten as markup
    out = copy_of(done, tmp_path / "out")

    def change(row):
        if row["type"] == "run":
            row["rows"][0]["id"] = "uniform\x1b[2J"
            return json.dumps(row)
        return None

    rewrite(out, change)
    msg = refused(cli, "report", out, expect=["records no experiment run"])
    assert "\x1b" not in msg


def test_a_damaged_line_in_a_reuse_source_is_named_and_its_unit_runs_here(full, cli, tmp_path):
    """--reuse reads another experiment's ledger: a damaged line there is skipped with a
    warning naming that file and line, and the unit it recorded runs in this experiment."""
    plan_file, done = full
    source = copy_of(done, tmp_path / "source")
    path = source / "ledger.jsonl"
    lines = path.read_bytes().splitlines()
    n = next(i for i, raw in enumerate(lines)
             if json.loads(raw).get("unit") == "eval/uniform/seed0")
    lines[n] = b"\x00 not json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    code, stdout, stderr = cli("experiment", plan_file, "--out", out, "--threads", "1",
                               "--reuse", source, "--json", "--no-report")
    assert code == 0, stderr
    assert f"--reuse {path}:{n + 1}: skipped a damaged ledger line" in " ".join(stderr.split())
    res = json.loads(stdout)
    assert "eval/uniform/seed0" in res["ran"] and "eval/uniform/seed0" not in res["imported"]
    assert results(out) == results(done)
