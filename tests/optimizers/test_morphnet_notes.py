"""MorphNet's notes on a finished ladder search: each rung's pruning and score, and a warning
when the chosen rung sits at an end of the ladder."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT
from wtc.graph import compile_spec, count_macs
from wtc.optimizers import get_optimizer
from wtc.optimizers.morphnet import MorphNet
from wtc.spec import load_spec

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def graph():
    return compile_spec(load_spec(ROOT / "specs" / "tiny" / "resnet_tiny.yaml"))


def _details(base: int, kept: list[float], top1: list[float], chosen: int) -> dict:
    rungs = [{"rung": i, "lambda": 1e-8 * 4 ** i, "alive_macs": int(k * base), "val_top1": t}
             for i, (k, t) in enumerate(zip(kept, top1, strict=True))]
    return {"ladder": rungs, "rung": chosen, "val_top1": top1[chosen]}


def test_every_rung_is_listed_and_the_chosen_one_marked(graph):
    base = count_macs(graph)
    lines = MorphNet.notes(graph, _details(base, [0.9, 0.6, 0.3], [0.70, 0.74, 0.72], 1))
    assert len(lines) == 4  # a heading and one line per rung; a middle rung: no warning
    assert "rung 1: λ 4e-08, structure kept 60.0% of the base MACs" in lines[2]
    assert lines[2].endswith("held-out top-1 74.00%  <- chosen")
    assert "chosen" not in lines[1] + lines[3]


def test_a_weakest_rung_that_pruned_nothing_says_so(graph):
    base = count_macs(graph)
    lines = MorphNet.notes(graph, _details(base, [1.0, 0.99, 0.5], [0.80, 0.79, 0.78], 0))
    assert "the weakest λ won and pruned (almost) nothing" in lines[-1]
    assert "--set strength" in lines[-1]
    # the weakest rung winning after it did prune is an ordinary choice
    lines = MorphNet.notes(graph, _details(base, [0.8, 0.6, 0.5], [0.80, 0.79, 0.78], 0))
    assert "weakest" not in lines[-1] and "strongest" not in lines[-1]


def test_the_strongest_rung_winning_points_beyond_the_ladder(graph):
    base = count_macs(graph)
    lines = MorphNet.notes(graph, _details(base, [0.9, 0.6, 0.3], [0.70, 0.72, 0.75], 2))
    assert "the strongest λ won" in lines[-1]


def test_without_a_ladder_there_is_nothing_to_say(graph):
    assert MorphNet.notes(graph, {"val_top1": 0.7}) == []
    assert get_optimizer("autoslim").notes(graph, {"val_top1": 0.7}) == []  # the default
