"""`wtc experiment --time-limit`: the run ends between units, starting a unit only while its
dry-run estimate fits in the time left, so a run that must stop by a deadline (a session, a
cluster allocation) loses no half-done unit; rerunning continues."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import SMALL_PLAN
from wtc.errors import ConfigError
from wtc.experiment import expand, load_plan, run_experiment
from wtc.experiment import time_limit as tl_mod
from wtc.experiment.status import ledger_status

pytestmark = pytest.mark.integration

PLAN = {**SMALL_PLAN, "name": "limit"}


def _plan(tmp_path, name: str, **over):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**PLAN, "name": name, **over}))
    return path, load_plan(path)


def test_a_unit_that_does_not_fit_waits_for_a_later_run_with_what_needs_it(tmp_path,
                                                                            monkeypatch):
    _, plan = _plan(tmp_path, "limit")
    out = tmp_path / "out"
    real = tl_mod.estimates
    priced = real(plan, expand(plan), out, ())
    assert priced == {u.id: 0.0 for u in expand(plan) if u.kind in ("eval", "pick")} | {
        u: 0.0 for u in priced if u.startswith("search/uniform")}  # nothing timed yet
    # MorphNet's search is expected to take far longer than the limit; the rest fits
    monkeypatch.setattr(tl_mod, "estimates", lambda *a: {
        **{u.id: 0.0 for u in expand(plan)}, "search/morphnet/target": 1e6})
    res = run_experiment(plan, out, threads=1, time_limit=600)
    assert res.stopped and res.deferred == {"search/morphnet/target": 1e6}
    assert "train/uniform/seed0" in res.ran and "eval/uniform/seed0" in res.ran
    left = ["search/morphnet/target", "train/morphnet/direct/seed0", "eval/morphnet/direct/seed0"]
    assert ledger_status(expand(plan), out).to_run == left
    monkeypatch.setattr(tl_mod, "estimates", real)
    res = run_experiment(plan, out, threads=1)  # no limit: the rest runs
    assert sorted(res.ran + list(res.reused)) == sorted(left) and not res.deferred


def test_a_sibling_is_priced_from_the_reused_ledger_and_a_passed_deadline_starts_nothing(
        tmp_path, cli):
    _, first = _plan(tmp_path, "first")
    run_experiment(first, tmp_path / "a", threads=1)
    path, second = _plan(tmp_path, "second", seeds=[1])
    est = tl_mod.estimates(second, expand(second), tmp_path / "b", [tmp_path / "a"])
    trains = [u for u in ledger_status(expand(second), tmp_path / "b", [tmp_path / "a"]).to_run
              if u.startswith("train/")]  # (MorphNet's may share uniform's: the same widths)
    assert "train/uniform/seed1" in trains and all(est[u] > 0 for u in trains)
    code, stdout, stderr = cli("experiment", path, "--out", tmp_path / "b", "--reuse",
                               tmp_path / "a", "--time-limit", "0.001s", "--json")
    assert code == 0, stderr
    res = json.loads(stdout)
    assert res["stopped"] and res["ran"] == [] and res["imported"]  # the searches: copied
    # every training waits (a twin of uniform's too: nothing ran that it could share)
    assert set(trains) <= set(res["deferred"]) and all(u.startswith("train/") for u in
                                                         res["deferred"])
    code, stdout, _ = cli("experiment", path, "--out", tmp_path / "b", "--reuse",
                          tmp_path / "a", "--time-limit", "0.001s", "--progress", "none")
    text = " ".join(stdout.split())
    assert code == 0 and "time limit:" in text and "Rerun the same command to continue" in text
    code, stdout, _ = cli("experiment", path, "--out", tmp_path / "b", "--reuse",
                          tmp_path / "a", "--time-limit", "2h")
    assert code == 0 and "time limit" not in stdout
    assert ledger_status(expand(second), tmp_path / "b").to_run == []


@pytest.mark.parametrize("value,message", [
    ("0", "must be above 0"), ("-5m", "must be above 0"), ("2x", "a duration such as"),
    ("inf", "a duration such as"), ("99999h", "must be at most"),
])
def test_a_bad_time_limit_exits_2_before_anything_is_written(tmp_path, cli, value, message):
    path, _ = _plan(tmp_path, "bad")
    code, _, stderr = cli("experiment", path, "--out", tmp_path / "out", "--time-limit", value)
    assert code == 2 and message in stderr and "--time-limit" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "out").exists()


def test_a_time_limit_needs_a_plan_to_price_units(tmp_path):
    _, plan = _plan(tmp_path, "units")
    with pytest.raises(ConfigError, match="needs a plan"):
        run_experiment(None, tmp_path / "out", units=expand(plan), time_limit=60)
    with pytest.raises(ConfigError, match="positive number of seconds"):
        run_experiment(plan, tmp_path / "out", time_limit=float("nan"))
