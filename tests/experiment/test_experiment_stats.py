"""The report's significance test and its search-accuracy read-out (issue 11)."""

from __future__ import annotations

import math
import statistics

import pytest

from tests.helpers import ROOT
from wtc.experiment.report import same_widths, search_val_top1
from wtc.experiment.stats import betainc, t_two_sided, welch
from wtc.graph import compile_spec, count_macs
from wtc.spec import load_spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("t,df", [(12.706, 1), (4.303, 2), (2.776, 4), (2.228, 10),
                                  (1.96, 1e6)])
def test_student_t_critical_values_give_five_percent(t, df):
    assert t_two_sided(t, df) == pytest.approx(0.05, abs=2e-4)


def test_incomplete_beta_matches_closed_forms():
    # Beta(2, 3) CDF at 0.4 is a binomial tail; I_x(1, 1) = x; I_x(a, b) = 1 - I_{1-x}(b, a)
    assert betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-12)
    assert betainc(1, 1, 0.3) == pytest.approx(0.3, abs=1e-12)
    assert betainc(2.5, 0.5, 0.9) == pytest.approx(1 - betainc(0.5, 2.5, 0.1), abs=1e-12)
    assert t_two_sided(0.0, 3) == 1.0 and t_two_sided(50.0, 30) < 1e-20
    with pytest.raises(ValueError):
        betainc(1, 1, 1.5)


def test_welch_statistic_and_degrees_of_freedom():
    a, b = [0.85, 0.86, 0.84, 0.87], [0.80, 0.83, 0.81]
    t, df, p = welch(a, b)
    va, vb = statistics.variance(a) / 4, statistics.variance(b) / 3
    assert t == pytest.approx((statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va**2 / 3 + vb**2 / 2))
    assert p == pytest.approx(t_two_sided(t, df)) and 0 < p < 0.05
    assert welch(b, a)[2] == pytest.approx(p)  # symmetric
    assert welch([0.5], a) is None
    assert welch([0.5, 0.5], [0.5, 0.5])[2] == 1.0 and welch([0.6, 0.6], [0.5, 0.5])[2] == 0.0


def test_each_methods_search_accuracy_is_found_where_it_records_it():
    assert search_val_top1("morphnet", {"val_top1": 0.7}) == 0.7
    assert search_val_top1("dmcp", {"dmcp": {"held_out_top1": 0.65}}) == 0.65
    trajectory = [{"top1": 0.9}, {"top1": 0.8}, {"top1": 0.6}]
    assert search_val_top1("autoslim", {"trajectory": trajectory, "trajectory_step": 1}) == 0.8
    assert search_val_top1("morphnet", {}) is None
    assert search_val_top1("uniform", {"val_top1": 0.7}) is None  # not its key
    assert search_val_top1("no-such-method", {"val_top1": 0.7}) is None


def test_rows_with_identical_widths_are_grouped():
    rows = [{"row": "uniform", "widths": [4, 8]}, {"row": "a/direct", "widths": [3, 9]},
            {"row": "a/p", "widths": [4, 8]}, {"row": "b", "widths": []}]
    assert same_widths(rows) == [["uniform", "a/p"]]


def test_every_training_method_declares_its_cost_estimate_and_held_out_accuracy():
    """A method that trains and forgets either protocol would get a lower-bound dry-run cost and
    an empty accuracy column in the report, silently."""
    from wtc.optimizers import OPTIMIZERS, Optimizer

    for name in OPTIMIZERS:
        cls = OPTIMIZERS.get(name)
        if cls.needs_data:
            assert cls.has_estimate(), name
            assert cls.held_out_top1 is not Optimizer.held_out_top1, name
        elif cls.has_estimate():  # training-free with an estimate: it must say none
            g = compile_spec(load_spec(ROOT / "specs" / "resnet20_fmnist.yaml"))
            assert cls.estimate_train_macs(g, cls.Settings(), images=1000.0,
                                           target_macs=count_macs(g) // 2) == 0, name
        else:  # the dry run counts it as uniform: no training
            assert name == "uniform", name
