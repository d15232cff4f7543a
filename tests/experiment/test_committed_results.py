"""The committed experiments are promises: each finished one under examples/results/ (a ledger
with its report) resumes with zero units to run, and `wtc report` rebuilds its report.md and
report.json byte for byte. A ledger committed while its experiment still runs has no report yet.

No training: every unit kind is replaced by one that fails the test, and the dataset check is
skipped (nothing reads the data when every unit is already recorded). Each run works on a copy
in tmp_path, so the committed folders are never touched.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from tests.helpers import ROOT
from wtc.experiment import expand, load_plan, run_experiment

pytestmark = pytest.mark.integration

RESULTS = sorted(p for p in (ROOT / "examples" / "results").iterdir()
                 if (p / "ledger.jsonl").is_file())
# a finished experiment has its report; one still running (a ledger committed part way) has not
FINISHED = [p for p in RESULTS if (p / "report.md").is_file()]


def plan_of(folder):
    """The plan a results folder was run from: examples/NAME.yaml or examples/*/NAME.yaml."""
    found = sorted((ROOT / "examples").glob(f"{folder.name}.yaml")) + sorted(
        (ROOT / "examples").glob(f"*/{folder.name}.yaml"))
    assert len(found) == 1, (folder.name, found)
    return found[0]


def test_every_committed_experiment_has_its_plan():
    assert FINISHED, "no committed experiments found"
    for folder in RESULTS:
        plan_of(folder)


@pytest.mark.parametrize("folder", FINISHED, ids=lambda p: p.name)
def test_committed_ledger_resumes_with_zero_units_to_run(folder, tmp_path, monkeypatch):
    from wtc.experiment import execute, runner

    def must_not_run(payload):
        raise AssertionError(f"unit {payload['id']} would run again")

    for name in execute.UNIT_KINDS:
        kind = execute.UNIT_KINDS.get(name)
        monkeypatch.setitem(execute.UNIT_KINDS._items, name, replace(kind, run=must_not_run))
    monkeypatch.setattr(runner, "check_data", lambda plan: None)
    out = tmp_path / folder.name
    shutil.copytree(folder, out)
    plan = load_plan(plan_of(folder))
    res = run_experiment(plan, out, threads=1)
    assert res.ran == [] and res.reused == {} and res.imported == [] and not res.stopped
    assert sorted(res.skipped) == sorted(u.id for u in expand(plan))


@pytest.mark.parametrize("folder", FINISHED, ids=lambda p: p.name)
def test_committed_report_rebuilds_byte_identically(folder, cli, tmp_path):
    out = tmp_path / folder.name
    shutil.copytree(folder, out)
    for name in ("report.md", "report.json"):
        (out / name).unlink()
    code, _, err = cli("report", out, "--json")
    assert code == 0, err
    for name in ("report.md", "report.json"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
