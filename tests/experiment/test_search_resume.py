"""A search unit killed mid-way continues from its checkpoints in the next run (its work folder,
`work/INPUT_HASH/`) and records what an uninterrupted run records, with its seconds counted
over both attempts (`experiment.unit_clock`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import PLAN, RESNET_TINY, results
from wtc.experiment import Ledger, Plan, expand, load_plan, run_experiment
from wtc.experiment.runner import UnitFailed, _lock
from wtc.experiment.status import ledger_status
from wtc.experiment.unit_clock import CLOCK_FILE, UnitClock
from wtc.trainer import loop

pytestmark = pytest.mark.integration

METHODS = {
    "morphnet": {"epochs": 2},
    "autoslim": {"epochs": 2, "eval_batches": 1, "bn_batches": 1, "steps": 4},
    "dmcp": {"epochs": 4, "samples": 3, "bn_batches": 1},
}


def _plan(method: str, folder: Path) -> tuple[Path, Plan]:
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump({**PLAN, "target": {"spec": RESNET_TINY, "macs": "0.5x"},
                                    "methods": {method: METHODS[method]},
                                    "proxies": {"half": {"width": 0.5}}, "seeds": [0]}))
    return path, load_plan(path)


class CountEpochs:
    """Counts the epochs trained; with `kill`, raises after the first epoch of a search (once
    it is checkpointed), as a kill in the middle of that search would. A search checkpoints in
    a subfolder of its work folder (`work/HASH/supernet`, `.../round0`), a final training in
    the work folder itself."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kill: bool = False) -> None:
        self.n, self.kill = 0, kill
        epoch = loop._Loop.epoch
        counter = self

        def counted(self, n, bar, out):
            epoch(self, n, bar, out)
            counter.n += 1
            if counter.kill and "work" in out.parts and out.parent.name != "work":
                counter.kill = False
                raise RuntimeError("killed")

        monkeypatch.setattr(loop._Loop, "epoch", counted)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_search_killed_mid_way_resumes_to_the_uninterrupted_ledger_lines(method, tmp_path,
                                                                           monkeypatch, cli):
    path, plan = _plan(method, tmp_path)
    with monkeypatch.context() as mp:
        straight = CountEpochs(mp)
        run_experiment(plan, tmp_path / "straight", threads=1)
    out = tmp_path / "killed"
    with monkeypatch.context() as mp:
        killed = CountEpochs(mp, kill=True)
        with pytest.raises(UnitFailed, match=r"search/.*killed"):
            run_experiment(plan, out, threads=1)
    (work,) = (out / "work").iterdir()  # the killed search's checkpoints and clock stay
    first = json.loads((work / CLOCK_FILE).read_text())
    assert first["attempts"] == 1 and first["seconds"] > 0
    assert not any(r["unit"].startswith(f"search/{method}") for r in Ledger(out).units())
    # the dry run says which unit continues from its checkpoints, and what it spent so far
    status = ledger_status(expand(plan), out)
    (cut,) = status.interrupted
    assert cut.startswith(f"search/{method}/") and status.interrupted[cut] == first["seconds"]
    code, text, err = cli("experiment", path, "--out", out, "--dry-run")
    assert code == 0, err
    assert "1 of them continue from the checkpoints of an interrupted run" in " ".join(
        text.split())
    with _lock(out):  # while a driver runs in the folder, the same units are in flight
        assert ledger_status(expand(plan), out).running
        code, text, err = cli("experiment", path, "--out", out, "--dry-run")
        assert "1 of them are running now" in " ".join(text.split())
    assert not ledger_status(expand(plan), out).running
    with monkeypatch.context() as mp:
        resumed = CountEpochs(mp)
        run_experiment(plan, out, threads=1)
    assert killed.n + resumed.n == straight.n  # no epoch trained before the kill trains again
    assert results(out) == results(tmp_path / "straight")
    lines = {r["unit"]: r for r in Ledger(out).units()}
    (twice,) = [r for r in lines.values() if r["timing"].get("attempts")]
    assert twice["unit"].startswith(f"search/{method}/")
    assert twice["timing"]["attempts"] == 2 and twice["seconds"] >= first["seconds"]
    assert twice["timing"]["earlier_seconds"] == first["seconds"]
    assert not (out / "work").exists()  # recorded: the work folders are gone


def test_the_clock_adds_up_attempts_and_ignores_a_file_that_is_not_its_own(tmp_path):
    with UnitClock(tmp_path / "w", every=0.01) as clock:
        pass
    assert clock.attempt == 1
    first = json.loads((tmp_path / "w" / CLOCK_FILE).read_text())
    with UnitClock(tmp_path / "w") as clock:
        pass
    assert clock.attempt == 2 and clock.seconds() >= first["seconds"]
    for junk in ("not json", '{"seconds": -1, "attempts": 3}', '{"seconds": "NaN", "attempts": 1}',
                 '{"attempts": 2}', "[]"):
        (tmp_path / "w" / CLOCK_FILE).write_text(junk)
        with UnitClock(tmp_path / "w") as clock:
            pass
        assert clock.attempt == 1 and clock.seconds() < 5
