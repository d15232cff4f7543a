"""One AutoSlim run serving several MACs targets decides exactly as one run per target: the
supernet and the greedy trajectory do not depend on the targets (only on the seed and the
settings), so sharing a run across budgets changes nothing but the compute."""

from __future__ import annotations

import pytest

import wtc

pytestmark = pytest.mark.integration

TINY = "specs/tiny/resnet_tiny.yaml"
DATA = {"data": "synthetic", "synthetic_size": 384, "synthetic_test_size": 64,
        "batch_size": 64}
FAST = {"epochs": 1, "eval_batches": 1, "bn_batches": 1, "steps": 5}


def _run(targets):
    return wtc.search(TINY, "autoslim", targets, settings=FAST, data=DATA, seed=3, threads=1)


def test_a_shared_run_gives_every_target_the_single_target_run_widths():
    shared = _run(["0.6x", "0.3x"])
    base = wtc.count_macs(wtc.compile_spec(wtc.load_spec(TINY)))
    high, low = round(0.6 * base), round(0.3 * base)
    assert set(shared.per_target) == {high, low}
    alone = {high: _run("0.6x"), low: _run("0.3x")}
    for t, single in alone.items():
        w = shared.per_target[t]
        assert w.groups == single.groups, f"target {t}: shared and single-target runs differ"
        # each target's file names its own trajectory step (the chance flag reads it)
        assert w.provenance["trajectory_step"] == single.details["trajectory_step"]
    # the single-target trajectories are prefixes of the shared one (same decisions)
    traj = [p["widths"] for p in shared.details["trajectory"]]
    for single in alone.values():
        mine = [p["widths"] for p in single.details["trajectory"]]
        assert traj[:len(mine)] == mine
    # the higher target stopped earlier: the sharing saves its greedy steps, not its supernet
    assert alone[high].details["trajectory_step"] < shared.per_target[low].provenance[
        "trajectory_step"]
    assert shared.details["supernet"] == alone[high].details["supernet"]
