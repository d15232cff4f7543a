"""The report says when a search decided at or near chance (issue 18): its held-out top-1
beside chance for the classes it searched on, and a flag on rows whose search learned too
little for its widths (or its overhead savings) to mean anything."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT
from wtc.experiment import resolve_plan, run_experiment, write_report
from wtc.experiment.report import near_chance

pytestmark = pytest.mark.integration

TINY = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")  # 4 classes: chance 25%


def test_the_rule_is_three_times_chance_capped_half_way_to_one():
    assert near_chance(0.29, 0.1) and not near_chance(0.31, 0.1)
    assert near_chance(0.74, 0.5) and not near_chance(0.76, 0.5)
    assert not near_chance(None, 0.1) and not near_chance(0.05, None)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("chance")
    plan = resolve_plan({
        "name": "chance", "target": {"spec": TINY, "macs": "0.5x"},
        "data": {"data": "synthetic", "synthetic_size": 640, "synthetic_test_size": 64,
                 "batch_size": 32},
        "methods": {"morphnet": {"epochs": 3, "ladder": 2, "score_epochs": 2}},
        # starved: 5% of the images at 4 px, and no floor on its held-out split
        "proxies": {"starved": {"fraction": 0.05, "width": 0.5, "resolution": 4}},
        "search": {"val_split": 0.2, "val_min_per_class": 0}, "train": {"epochs": 1},
        "seeds": [0]})
    run_experiment(plan, out, threads=1)
    write_report(out)
    return out


def test_a_starved_proxy_search_is_flagged_and_a_healthy_one_is_not(report):
    rows = {r["row"]: r for r in json.loads((report / "report.json").read_text())["rows"]}
    starved, direct = rows["morphnet/starved"], rows["morphnet/direct"]
    assert starved["search_chance"] == direct["search_chance"] == 0.25
    assert starved["search_near_chance"] is True and direct["search_near_chance"] is False
    assert "search_chance" not in rows["uniform"]
    md = (report / "report.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| morphnet | starved |"))
    assert line.count("†") == 3 and "(chance 25) †" in line  # MACs, wall time, held-out
    healthy = next(x for x in md.splitlines() if x.startswith("| morphnet | direct |"))
    assert "†" not in healthy and "(chance 25)" in healthy
    assert "† the search decided at or near chance" in md  # only when a row is flagged


def test_a_report_without_a_flagged_row_has_no_footnote(report):
    from wtc.experiment.report import collect, markdown

    data = collect(report)
    data["rows"] = [r for r in data["rows"] if not r.get("search_near_chance")]
    assert "†" not in markdown(data)
