"""MorphNet's MACs-target mode (issue 11, part 1): a λ ladder scored on the held-out split of the
training set after BN recalibration; the test set is never read by a search."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT
from wtc.errors import ConfigError
from wtc.graph import compile_spec
from wtc.optimizers import search
from wtc.optimizers.morphnet import MorphNet, MorphNetSettings
from wtc.spec import load_spec

pytestmark = pytest.mark.integration

DATA = {"data": "synthetic", "synthetic_size": 192, "synthetic_test_size": 64,
        "batch_size": 32, "val_split": 0.25}


@pytest.fixture
def graph():
    return compile_spec(load_spec(ROOT / "specs" / "tiny" / "resnet_tiny.yaml"))


@pytest.fixture
def no_test_set(monkeypatch):
    """Any read of a bundle's test loader fails the test."""
    import wtc.data as data

    real = data.make_data_for

    def guarded(*a, **k):
        bundle = real(*a, **k)

        class Forbidden:
            def __iter__(self):
                raise AssertionError("a search read the test set")

            def __len__(self):
                return 1

        bundle.test = Forbidden()
        return bundle

    import wtc.optimizers.training as tr

    monkeypatch.setattr(tr, "make_data_for", guarded)


def test_ladder_keeps_the_best_held_out_rung_and_counts_every_rung(graph, no_test_set):
    s = {"epochs": 1, "ladder": 3, "ladder_factor": 10.0, "score_epochs": 1}
    res = search(graph, "morphnet", target_macs="0.5x", settings=s, data=DATA, threads=1)
    rungs = res.details["ladder"]
    assert len(rungs) == 3
    lams = [r["lambda"] for r in rungs]
    assert lams[1] == pytest.approx(MorphNet.lam(_ctx(graph), MorphNetSettings()))
    assert lams[2] / lams[1] == pytest.approx(10.0) and lams[1] / lams[0] == pytest.approx(10.0)
    best = max(rungs, key=lambda r: r["val_top1"])
    assert res.details["val_top1"] == best["val_top1"]
    assert res.groups == rungs[res.details["rung"]]["widths"]
    assert res.train_macs == sum(r["train_macs"] for r in rungs)
    single = search(graph, "morphnet", target_macs="0.5x", settings={"epochs": 1}, data=DATA,
                    threads=1)
    assert res.train_macs > 3 * single.train_macs  # structure learning + scoring per rung
    # one λ: its score is what the search reports, a share of the held-out images it scored
    assert single.held_out_top1 == single.details["val_top1"]
    held_out = single.details["val_top1"] * 48  # 25% of 192 images
    assert held_out == pytest.approx(round(held_out))


def test_ladder_needs_a_held_out_split(graph):
    with pytest.raises(ConfigError, match="val_split"):
        search(graph, "morphnet", settings={"ladder": 2}, data={**DATA, "val_split": 0.0})


def test_dry_run_estimate_of_the_ladder(graph):
    one = MorphNet.estimate_train_macs(graph, MorphNetSettings(epochs=2), images=1000,
                                       target_macs=100)
    three = MorphNet.estimate_train_macs(graph, MorphNetSettings(epochs=2, ladder=3),
                                         images=1000, target_macs=100)
    assert three == 3 * (one + 3 * 100 * 1000)


def _ctx(graph):
    from wtc.optimizers.base import SearchContext

    return SearchContext(graph=graph, target_macs=1)
