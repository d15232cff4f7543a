"""The dry run says what a half-finished experiment has left: units recorded in the ledger and
units still to run, with their projected MACs (issue 18)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.helpers import SMALL_PLAN
from wtc.experiment import expand, load_plan, project, resolve_plan, run_experiment
from wtc.experiment.cost import summary, unit_estimates
from wtc.experiment.status import ledger_status

pytestmark = pytest.mark.integration

PLAN = {**SMALL_PLAN, "name": "status"}


def test_the_dry_run_splits_recorded_units_from_those_left(tmp_path, cli):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN))
    plan, out = load_plan(path), tmp_path / "out"
    units = [u.id for u in expand(plan)]
    assert ledger_status(expand(plan), out).to_run == units  # no ledger yet
    run_experiment(plan, out, threads=1, max_units=2)  # killed after two units
    status = ledger_status(expand(plan), out)
    assert len(status.recorded) == 2 and not set(status.recorded) & set(status.to_run)
    assert set(status.recorded) | set(status.to_run) == set(units)
    code, stdout, stderr = cli("experiment", path, "--out", out, "--dry-run", "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["recorded"]["units"] == 2 and data["to_run"]["units"] == len(units) - 2
    assert data["to_run"]["train_macs"] > 0
    assert {u["unit"] for u in data["units"] if u["recorded"]} == set(status.recorded)
    # the time the recorded units took is what their lines say; a kind none of them is has no
    # rate to price its units left at: no full estimate, a partial one that says what it lacks
    lines = [json.loads(x) for x in (out / "ledger.jsonl").read_text().splitlines()]
    took = sum(x["seconds"] for x in lines if x.get("type") == "unit")
    assert data["recorded"]["seconds"] == pytest.approx(took, abs=0.1)
    assert data["to_run"]["seconds_estimate"] is None
    code, text, _ = cli("experiment", path, "--out", out, "--dry-run")
    assert "of unit time); to run:" in " ".join(text.split())
    assert data["to_run"]["unpriced"]["units"] >= 1
    assert data["to_run"]["priced_units"] >= 1  # the recorded search prices the one left
    assert "have no recorded unit of their kind to estimate from" in " ".join(text.split())
    code, text, _ = cli("experiment", path, "--out", tmp_path / "fresh", "--dry-run")
    assert "no recorded unit of their kinds" in " ".join(text.split())  # nothing to price at
    run_experiment(plan, out, threads=1)
    assert ledger_status(expand(plan), out).to_run == []
    assert not (out / "work").exists()  # the finished trainings' checkpoints are gone
    # a second folder resuming from this one with --reuse: every unit is copied, none runs
    code, stdout, stderr = cli("experiment", path, "--out", tmp_path / "second", "--dry-run",
                               "--json", "--reuse", out)
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["copied"]["units"] == len(units) and data["to_run"]["units"] == 0
    assert {u["status"] for u in data["units"]} == {"copied"}
    assert not (tmp_path / "second").exists()  # a dry run writes nothing
    # a sibling plan (a longer search, another seed) has run nothing of its own, yet the rates
    # the --reuse folder measured price everything it has left
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**PLAN, "methods": {"morphnet": {"epochs": 2}},
                                     "seeds": [5]}))
    code, stdout, stderr = cli("experiment", other, "--out", tmp_path / "third", "--dry-run",
                               "--json", "--reuse", out)
    assert code == 0, stderr
    left = json.loads(stdout)["to_run"]
    assert left["rates_from_reuse"] == ["search", "train"] and left["seconds_estimate"] > 0
    code, text, _ = cli("experiment", other, "--out", tmp_path / "third", "--dry-run",
                        "--reuse", out)
    assert "search/train at the rate the --reuse folders ran them" in " ".join(text.split())
    # a committed folder keeps its ledger but not its checkpoints: nothing there can be copied,
    # yet its lines' seconds still price the kinds it ran
    shutil.rmtree(out / "artifacts")
    code, stdout, stderr = cli("experiment", other, "--out", tmp_path / "third", "--dry-run",
                               "--json", "--reuse", out)
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["to_run"]["rates_from_reuse"] == ["search", "train"], data["to_run"]
    assert data["copied"]["train_macs"] == 0  # nothing with a cost was copyable
    assert data["to_run"]["seconds_estimate"] > 0


def test_the_units_left_are_priced_at_the_rate_the_recorded_ones_of_their_kind_ran():
    from wtc.experiment.cost import Projection, _split
    from wtc.experiment.status import LedgerStatus

    proj = [Projection("search/a", "search", 100), Projection("train/a", "train", 40),
            Projection("search/b", "search", 300), Projection("train/b", "train", 80),
            Projection("eval/b", "eval", 0)]
    status = LedgerStatus(hashes={"search/a": "1"}, copied=["train/a"],
                          to_run=["search/b", "train/b", "eval/b"],
                          measured={"search/a": (200, 10.0), "train/a": (40, 4.0)})
    parts = _split(proj, status)
    assert (parts["recorded"]["seconds"], parts["copied"]["seconds"]) == (10.0, 4.0)
    # searches ran at 20 MACs/s, trainings at 10: 300 / 20 + 80 / 10 (evaluations cost nothing)
    assert parts["to_run"]["seconds_estimate"] == 23.0
    no_training = LedgerStatus(hashes={"search/a": "1"}, to_run=["train/a"],
                               measured={"search/a": (200, 10.0)})
    assert _split(proj[:2], no_training)["to_run"]["seconds_estimate"] is None
    # searches measured, trainings not: the searches left are still priced, the rest counted
    half = LedgerStatus(hashes={"search/a": "1"}, to_run=["search/b", "train/b", "eval/b"],
                        measured={"search/a": (200, 10.0)})
    left = _split(proj, half)["to_run"]
    assert left["seconds_estimate"] is None
    assert (left["priced_seconds"], left["priced_units"]) == (15.0, 1)
    assert left["unpriced"] == {"units": 2, "train_macs": 120, "kinds": ["train"]}
    # ... unless a --reuse folder ran trainings: at its rate (8 MACs/s) the 120 left are priced; a
    # kind measured here keeps its own rate
    half.reference = {"train": (160, 20.0), "search": (1, 100.0)}
    left = _split(proj, half)["to_run"]
    assert left["seconds_estimate"] == 15.0 + 120 / 8 and left["rates_from_reuse"] == ["train"]
    # a unit that continues from an interrupted attempt's checkpoints costs what is left of it
    half.interrupted = {"search/b": 6.0, "train/b": 99.0}
    left = _split(proj, half)["to_run"]
    # (search/b: 15 s less 6 spent; train/b: spent past its 10 s, so nothing; train/a: 5 s)
    assert left["seconds_estimate"] == (15.0 - 6.0) + 0.0 + 40 / 8
    assert left["interrupted"] == {"units": 2, "seconds": 105.0, "running": False}
    # a method measured here or in a --reuse folder is priced at its own rate, not its kind's:
    # DMCP's supernet steps run slower per MAC than MorphNet's
    proj = [Projection("search/morphnet/target", "search", 100),
            Projection("search/dmcp/target", "search", 100),
            Projection("search/dmcp/proxy", "search", 100),
            Projection("search/autoslim/target", "search", 100)]
    mixed = LedgerStatus(hashes={"search/morphnet/target": "1", "search/dmcp/target": "2"},
                         to_run=["search/dmcp/proxy", "search/autoslim/target"],
                         measured={"search/morphnet/target": (100, 10.0),
                                   "search/dmcp/target": (100, 40.0)})
    assert unit_estimates(proj, mixed) == {"search/dmcp/proxy": 40.0,  # DMCP's own rate
                                           "search/autoslim/target": 25.0}  # the kind's
    mixed.reference = {"search/autoslim": (100, 5.0), "search": (1, 1.0)}
    assert unit_estimates(proj, mixed)["search/autoslim/target"] == 5.0  # a sibling's AutoSlim
    # a search's own method and network come first: a proxy's small convolutions run at a
    # fraction of the target's MACs/s, so a sibling's proxy rate beats this plan's target rate
    mixed.reference["search/dmcp/proxy"] = (100, 80.0)
    assert unit_estimates(proj, mixed)["search/dmcp/proxy"] == 80.0
    assert _split(proj, mixed)["to_run"]["rates_from_reuse"] == ["search"]


def test_the_dry_run_counts_a_unit_computing_the_same_as_another_once(tmp_path):
    """A curve point at the plan's own search length is the plan's search: shared, not run
    twice, and its MACs are not counted as left to run."""
    plan = resolve_plan({**PLAN, "methods": {"morphnet": {"epochs": 1}},
                         "curve": {"epochs": [1, 2], "sources": ["target"]}})
    status = ledger_status(expand(plan), tmp_path / "none")
    assert status.shared == {"search/morphnet/target@e1": "search/morphnet/target"}
    assert status.of("search/morphnet/target@e1") == "shared"
    assert "search/morphnet/target@e2" in status.to_run
    split = summary(plan, project(plan), status)
    assert split["shared"]["units"] == 1 and split["shared"]["train_macs"] > 0


def test_a_report_half_way_through_a_changed_plan_shows_no_superseded_line(tmp_path):
    """A plan changed after a finished run: until the changed units have run again, the report
    shows them as missing, not with the lines of the plan before the change (the run line names
    the input hashes it took from the ledger)."""
    from wtc.experiment import collect

    out = tmp_path / "out"
    run_experiment(resolve_plan(PLAN), out, threads=1)
    before = {r["row"]: r for r in collect(out)["rows"]}
    assert before["morphnet/direct"]["top1_mean"] is not None
    changed = resolve_plan({**PLAN, "methods": {"morphnet": {"epochs": 2}}})
    res = run_experiment(changed, out, threads=1, max_units=1)  # killed after the new search
    assert res.ran == ["search/morphnet/target"]
    now = collect(out)
    rows = {r["row"]: r for r in now["rows"]}
    assert rows["uniform"]["top1"] == before["uniform"]["top1"]  # recorded and unchanged
    assert rows["morphnet/direct"]["top1_mean"] is None  # its old training is not its row's
    assert "eval/morphnet/direct/seed0" in now["missing"] and not now["complete"]
    run_experiment(changed, out, threads=1)
    assert collect(out)["complete"]


@pytest.mark.parametrize("recorded", [["search/a"], {"search/a": 3}, "x"])
def test_a_run_line_with_a_bad_recorded_map_is_a_damaged_line(recorded):
    from wtc.experiment.ledger_check import line_problem

    run = {"type": "run", "units": ["search/a"]}
    assert line_problem(run) is None
    assert line_problem({**run, "recorded": {"search/a": "0123abcd"}}) is None
    assert "'recorded'" in line_problem({**run, "recorded": recorded})
