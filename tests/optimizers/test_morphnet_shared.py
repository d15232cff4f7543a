"""One MorphNet run serving several MACs targets decides exactly as one run per target: with one
round, the structure learning (every λ rung at the base widths) does not depend on the target,
only the expansion and each rung's scoring at the target do. Sharing a run across budgets
changes nothing but the compute."""

from __future__ import annotations

import pytest

import wtc
from wtc.errors import ConfigError
from wtc.optimizers.morphnet import MorphNet, MorphNetSettings

pytestmark = pytest.mark.integration

TINY = "specs/tiny/resnet_tiny.yaml"
DATA = {"data": "synthetic", "synthetic_size": 192, "synthetic_test_size": 64,
        "batch_size": 32, "val_split": 0.25}


def _run(targets, **settings):
    return wtc.search(TINY, "morphnet", targets, settings={"epochs": 1, **settings}, data=DATA,
                      seed=2, threads=1)


@pytest.mark.parametrize("ladder", [1, 2])
def test_a_shared_run_gives_every_target_the_single_target_run_widths(ladder):
    s = {"ladder": ladder, "ladder_factor": 8.0, "score_epochs": 1}
    shared = _run(["0.6x", "0.3x"], **s)
    base = wtc.count_macs(wtc.compile_spec(wtc.load_spec(TINY)))
    high, low = round(0.6 * base), round(0.3 * base)
    assert set(shared.per_target) == {high, low}
    alone = {high: _run("0.6x", **s), low: _run("0.3x", **s)}
    for t, single in alone.items():
        w = shared.per_target[t]
        assert w.groups == single.groups, f"target {t}: shared and single-target runs differ"
        assert w.macs == single.macs
        # each target's file names its own rung, score and expansion (the chance flag reads them)
        for key in ("val_top1", "alpha", "alive", "lambda"):
            assert w.provenance[key] == single.details[key], key
        if ladder > 1:
            assert w.provenance["rung"] == single.details["rung"]
            assert [r["val_top1"] for r in w.provenance["ladder"]] == [
                r["val_top1"] for r in single.details["ladder"]]
    # the structure is learned once: the shared run costs less than the two runs it replaces
    def learning(res):  # the structure-learning epochs, without their wall times
        return [{k: v for k, v in row.items() if not k.startswith("seconds")}
                for row in res.history]

    assert learning(shared) == learning(alone[high]) == learning(alone[low])
    assert max(a.train_macs for a in alone.values()) <= shared.train_macs < sum(
        a.train_macs for a in alone.values())
    if ladder == 1:  # nothing is trained per target: the two-target run is the one-target run
        assert shared.train_macs == alone[high].train_macs

def test_later_rounds_learn_at_one_targets_widths_so_they_are_not_shared():
    with pytest.raises(ConfigError, match="rounds > 1"):
        _run(["0.6x", "0.3x"], rounds=2)
    assert _run("0.3x", rounds=2).details["rounds"][1]["round"] == 1  # one target: fine


def test_the_dry_run_prices_the_structure_learning_once_and_the_scoring_per_target():
    graph = wtc.compile_spec(wtc.load_spec(TINY))
    s = MorphNetSettings(epochs=2, ladder=3)
    one = {t: MorphNet.estimate_train_macs(graph, s, images=1000, target_macs=t, val_images=50)
           for t in (100, 40)}
    both = MorphNet.estimate_shared_train_macs(graph, s, images=1000, targets=(100, 40),
                                               val_images=50)
    score = {t: 3 * (3 * t * 1000 + t * 50) for t in (100, 40)}  # per rung: 1 epoch x 3, recal
    assert both == one[100] + score[40] == one[40] + score[100]
    plain = MorphNetSettings(epochs=2)
    assert MorphNet.estimate_shared_train_macs(graph, plain, images=1000, targets=(100, 40)) == (
        MorphNet.estimate_train_macs(graph, plain, images=1000, target_macs=40))


def test_the_cli_writes_one_widths_file_per_target_each_with_its_own_held_out_top1(cli, tmp_path):
    import json

    out = tmp_path / "w.json"
    code, stdout, err = cli("search", TINY, "--method", "morphnet", "--data", "synthetic",
                            "--target-macs", "0.6x,0.3x", "--set", "epochs=1", "--set",
                            "ladder=2", "--set", "ladder_factor=8", "--val-split", "0.25",
                            "-o", out, "--threads", "1", "--json")
    assert code == 0, err
    printed, at, decoder = [], 0, json.JSONDecoder()  # one JSON document per file written
    while stdout[at:].strip():
        doc, at = decoder.raw_decode(stdout, at + len(stdout[at:]) - len(stdout[at:].lstrip()))
        printed.append(doc)
    assert len(printed) == 2
    assert sorted(p.name for p in tmp_path.glob("w*.json")) == ["w.0.3x.json", "w.0.6x.json"]
    graph = wtc.compile_spec(wtc.load_spec(TINY))
    for report in printed:
        w = wtc.load_widths(report["output"], graph)
        assert abs(w.macs - w.target_macs) <= 0.01 * w.target_macs
        # the held-out top-1 printed is the one of the widths in this file
        assert report["held_out_top1"] == w.provenance["val_top1"]
