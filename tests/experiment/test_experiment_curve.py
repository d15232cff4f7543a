"""The search-length curve (issue 18): each method searched again at several lengths, direct
and from a proxy, and the report's table and figure rebuilt from the ledger alone."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT
from wtc.errors import PlanError
from wtc.experiment import expand, project, resolve_plan, run_experiment, write_report
from wtc.experiment.curve import curve_markdown

pytestmark = pytest.mark.integration

PLAN = {"name": "curve", "target": {"spec": str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml"),
                                    "macs": "0.5x"},
        "data": {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 48,
                 "batch_size": 32},
        "methods": {"morphnet": {"epochs": 1}}, "proxies": {"half": {"width": 0.5}},
        "search": {"val_split": 0.2}, "train": {"epochs": 1}, "seeds": [0],
        "curve": {"epochs": [2, 1], "sources": ["target", "half"]}}


def test_a_curve_adds_searches_and_transfers_at_each_length():
    plan = resolve_plan(PLAN)
    units = {u.id: u for u in expand(plan)}
    assert [units[f"search/morphnet/target@e{e}"].params["settings"]["epochs"]
            for e in (1, 2)] == [1, 2]
    assert units["transfer/morphnet/half@e2"].deps == ("search/morphnet/half@e2",)


def test_a_proxy_scales_its_curve_points_as_its_own_searches():
    """`search_epochs` multiplies a proxy's curve points like its own searches, so the point at
    the method's epochs is the proxy's search (shared), and the table says what ran."""
    plan = resolve_plan({**PLAN, "proxies": {"half": {"width": 0.5, "search_epochs": 3}}})
    units = {u.id: u for u in expand(plan)}
    assert [units[f"search/morphnet/half@e{e}"].params["settings"]["epochs"]
            for e in (1, 2)] == [3, 6]
    assert units["search/morphnet/half@e1"].params == units["search/morphnet/half"].params
    points = [{"method": "morphnet", "source": "half", "epochs": 2, "run_epochs": 6,
               "search_macs": 1e9, "held_out_top1": 0.5, "corr_longest_direct": 0.9}]
    md = "\n".join(curve_markdown(points))
    assert "| morphnet | half | 2 (6 run) |" in md and "`search_epochs` multiplies" in md
    macs = {p.unit: p.train_macs for p in project(plan)}
    assert macs["search/morphnet/target@e2"] > macs["search/morphnet/target@e1"] > 0
    with pytest.raises(PlanError, match="neither target nor a proxy"):
        resolve_plan({**PLAN, "curve": {"epochs": [1], "sources": ["nope"]}})
    with pytest.raises(PlanError):
        resolve_plan({**PLAN, "curve": {"epochs": [0]}})


def test_the_report_rebuilds_the_curve_from_the_ledger_alone(tmp_path):
    out = tmp_path / "out"
    summary = run_experiment(resolve_plan(PLAN), out, threads=1)
    # the 1-epoch direct point is the plan's own direct search: computed once, shared
    assert summary.reused["search/morphnet/target@e1"] == "search/morphnet/target"
    for f in ("report.json", "report.md"):
        (out / f).unlink(missing_ok=True)
    write_report(out)
    curve = json.loads((out / "report.json").read_text())["curve"]
    assert [(p["source"], p["epochs"]) for p in curve] == [
        ("target", 1), ("target", 2), ("half", 1), ("half", 2)]
    longest = next(p for p in curve if p["source"] == "target" and p["epochs"] == 2)
    assert longest["corr_longest_direct"] == pytest.approx(1.0)
    assert all(p["reference_epochs"] == 2 and p["search_macs"] > 0 for p in curve)
    assert all(p["held_out_top1"] is not None for p in curve)
    assert (out / "figures" / "search_length_morphnet.png").stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "## Search length" in md and "| morphnet | half | 2 |" in md
