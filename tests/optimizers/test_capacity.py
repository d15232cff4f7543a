"""The capacity search (issue 20, item 4): the most MACs a latency (or parameter) budget buys.
On a table whose cost per MAC differs between layers it lands within the budget with more MACs
than uniform widths, moves channels away from the layers where a MAC is dear, keeps every group
in its band, and is refused under a MACs budget."""

from __future__ import annotations

import json
import random

import pytest

import wtc
from tests.helpers import ROOT
from wtc.errors import ConfigError
from wtc.graph import compile_spec, count_macs
from wtc.graph.cost_registry import parse_cost
from wtc.graph.costmodel import ParamsCost
from wtc.graph.latency import FORMAT
from wtc.profile.table import plan_layers
from wtc.spec import load_spec
from wtc.widths import steps, uniform_widths
from wtc.widths.exchange import most_macs_within

pytestmark = pytest.mark.integration

TINY = ROOT / "specs" / "tiny"


def graph_of(name: str):
    return compile_spec(load_spec(TINY / f"{name}.yaml"))


def _area(graph, node) -> int:
    hw = graph.nx.nodes[node]["in_hw"]
    return hw[0] * hw[1] if hw else 1


def table(graph, dear: str | None = None) -> dict:
    """Known per-layer costs, slope·(Π channels)·area + intercept, with slopes that differ per
    layer configuration; the configuration of node `dear` costs 30x more per channel."""
    layers = []
    for p in plan_layers(graph, points=4, max_multiplier=2.0):
        rng = random.Random(p.key)
        slope = rng.uniform(0.5, 3.0) * 1e-9 * (30 if dear in p.nodes else 1)
        icpt, area = rng.uniform(1.0, 5.0) * 1e-6, _area(graph, p.node)
        med = ([slope * a * area + icpt for a in p.grid[0]] if len(p.grid) == 1 else
               [[slope * a * b * area + icpt for b in p.grid[1]] for a in p.grid[0]])
        layers.append({"key": p.key, "grid": p.grid, "median": med})
    return {"format": FORMAT, "spec": {"name": graph.spec.name, "hash": graph.spec_hash},
            "runtime": "torch-cpu", "threads": 1, "batch": 1, "overhead_s": 2e-5,
            "machine": {"host": "synthetic"}, "layers": layers}


def latency_model(tmp_path, graph, dear=None):
    path = tmp_path / f"{graph.spec.name}.json"
    path.write_text(json.dumps(table(graph, dear)))
    return parse_cost(f"latency:{path}"), path


@pytest.mark.parametrize("name", ["resnet_tiny", "mbv2_tiny"])
def test_capacity_lands_within_the_latency_target_with_more_macs_than_uniform(name, tmp_path):
    g = graph_of(name)
    model, _ = latency_model(tmp_path, g)
    target = 0.6 * model.cost(g)
    res = wtc.search(g, "capacity", target, cost=model)
    uni = uniform_widths(g, target_macs=target, cost=model)
    achieved = model.cost(g, res.groups)
    assert 0.99 * target <= achieved <= target * (1 + 1e-12)
    assert res.macs > uni.macs
    assert res.widths.provenance["macs_over_uniform"] == pytest.approx(res.macs / uni.macs,
                                                                       abs=1e-4)
    assert res.widths.provenance["cost_model"]["target"] == pytest.approx(target)


def test_capacity_moves_channels_away_from_the_layer_where_a_mac_is_dear(tmp_path):
    g = graph_of("mbv2_tiny")
    dear = "stage2.block0.dw"  # on the expanded channels, not the block's input's
    assert g.nx.nodes[dear]["op"] == "dwconv"
    group = g.nx.nodes[dear]["in_groups"][0]
    model, _ = latency_model(tmp_path, g, dear=dear)
    target = 0.6 * model.cost(g)
    start = uniform_widths(g, target_macs=target, cost=model).groups
    found = most_macs_within(g, model, target, start)
    assert found[group] < start[group]
    assert count_macs(g, found) > count_macs(g, start)


def test_every_group_stays_in_its_band_and_on_its_step(tmp_path):
    g = graph_of("resnet_tiny")
    model, _ = latency_model(tmp_path, g)
    target = 0.5 * model.cost(g)
    start = uniform_widths(g, target_macs=target, cost=model).groups
    step = steps(g)
    for band in (1.0, 1.5):
        found = most_macs_within(g, model, target, start, band=band)
        for gr, v in found.items():
            assert v % step[gr] == 0 and start[gr] / band - step[gr] < v
            assert v < start[gr] * band + step[gr]
        if band == 1.0:  # no room to move: the uniform widths as they are
            assert found == start


def test_capacity_under_a_parameter_budget_stays_within_it():
    g = graph_of("resnet_tiny")
    cost = ParamsCost()
    target = round(0.5 * cost.cost(g))
    res = wtc.search(g, "capacity", target, cost="params")
    assert cost.cost(g, res.groups) <= target
    assert res.macs >= uniform_widths(g, target_macs=target, cost=cost).macs


def test_capacity_under_a_macs_budget_is_refused():
    with pytest.raises(ConfigError, match=r"capacity.*--cost latency:TABLE"):
        wtc.search(graph_of("resnet_tiny"), "capacity", "0.5x")


def test_cli_capacity_search_with_a_latency_table(cli, tmp_path):
    g = graph_of("resnet_tiny")
    model, path = latency_model(tmp_path, g)
    out = tmp_path / "w.json"
    target = 0.6 * model.cost(g)
    code, _, stderr = cli("search", str(TINY / "resnet_tiny.yaml"), "-m", "capacity",
                          "--cost", f"latency:{path}", "--target",
                          f"{target * 1e3:.6f}ms", "-o", str(out))
    assert code == 0, stderr
    prov = json.loads(out.read_text())["provenance"]
    assert prov["method"] == "capacity" and prov["cost_model"]["achieved"] <= target * 1.000001
    code, _, stderr = cli("search", str(TINY / "resnet_tiny.yaml"), "-m", "capacity",
                          "--target", "0.5x", "-o", str(tmp_path / "m.json"))
    assert code == 2 and "--cost" in stderr and not (tmp_path / "m.json").exists()


def test_a_latency_plan_with_the_capacity_search_reports_its_latency_beside_uniform(tmp_path):
    from wtc.experiment import load_plan, run_experiment, write_report

    g = graph_of("resnet_tiny")
    (tmp_path / "t.json").write_text(json.dumps(table(g)))
    plan = {"name": "cap", "target": {"spec": str(TINY / "resnet_tiny.yaml"), "macs": "0.6x",
                                      "cost": "latency:t.json"},
            "methods": {"capacity": {}},
            "data": {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 32,
                     "batch_size": 32},
            "train": {"epochs": 1, "lr": 0.05}, "seeds": [0]}
    (tmp_path / "plan.yaml").write_text(json.dumps(plan))
    from wtc.experiment import project

    dry = {p.unit: p for p in project(load_plan(tmp_path / "plan.yaml"))}
    # a training-free search costs nothing in the dry run (not a training at the base widths)
    assert (dry["search/capacity/target"].train_macs, dry["search/capacity/target"].note) == (
        0, "")
    out = tmp_path / "out"
    run_experiment(load_plan(tmp_path / "plan.yaml"), out, threads=1)
    write_report(out)
    rows = {r["method"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert set(rows) == {"uniform", "capacity"}
    cap, uni = rows["capacity"], rows["uniform"]
    assert cap["cost_model"]["achieved"] <= cap["cost_model"]["target"] * (1 + 1e-9)
    assert cap["macs"] > uni["macs"]
    text = (out / "report.md").read_text()
    assert "## Latency (predicted)" in text and "| capacity |" in text
    assert (out / "figures" / "top1_vs_latency.png").is_file()


def test_a_macs_plan_with_the_capacity_search_is_refused_before_anything_runs(cli, tmp_path):
    """Under a MACs budget capacity has nothing to trade: the plan names it (dry run and run
    alike, exit 2, nothing written), and under a cost model it projects no training MACs."""
    plan = {"name": "cap", "target": {"spec": str(TINY / "resnet_tiny.yaml"), "macs": "0.6x"},
            "methods": {"capacity": {}},
            "data": {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 32,
                     "batch_size": 32},
            "train": {"epochs": 1, "lr": 0.05}, "seeds": [0]}
    (tmp_path / "plan.yaml").write_text(json.dumps(plan))
    for extra in (["--dry-run"], []):
        code, _, stderr = cli("experiment", str(tmp_path / "plan.yaml"), "--out",
                              str(tmp_path / "out"), *extra)
        assert code == 2 and "methods.capacity" in stderr and "MACs budget" in stderr, stderr
        assert not (tmp_path / "out").exists()
    plan["target"]["cost"] = "params"
    (tmp_path / "plan.yaml").write_text(json.dumps(plan))
    code, stdout, stderr = cli("experiment", str(tmp_path / "plan.yaml"), "--out",
                               str(tmp_path / "out"), "--dry-run", "--json")
    assert code == 0, stderr
    rows = {u["unit"]: u for u in json.loads(stdout)["units"]}
    assert rows["search/capacity/target"]["train_macs"] == 0
