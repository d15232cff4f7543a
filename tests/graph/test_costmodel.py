"""Cost models (issue 20): MACs stays the default and unchanged, params and latency tables price
widths, every optimizer and transfer land on a latency target as they do on MACs, tables
interpolate exactly on their grid and monotonically between, and a table for other layers or
another runtime is refused."""

from __future__ import annotations

import copy
import itertools
import json
import random

import pytest

import wtc
from tests.helpers import ROOT
from wtc.errors import ConfigError, TargetError, TransferError
from wtc.graph import compile_spec, count_macs, count_params
from wtc.graph.cost_registry import parse_cost
from wtc.graph.costmodel import MacsCost, ParamsCost, parse_target
from wtc.graph.latency import (
    FORMAT,
    LatencyCost,
    layer_axes,
    layer_key,
    table_from_json,
    timed_nodes,
)
from wtc.profile.table import plan_layers
from wtc.spec import load_spec
from wtc.widths import scale_to_macs, steps, uniform_widths

pytestmark = pytest.mark.integration

TINY = ROOT / "specs" / "tiny"
SYNTH = {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 32,
         "batch_size": 32}
OVERHEAD = 2e-5


def graph_of(name: str):
    return compile_spec(load_spec(TINY / f"{name}.yaml"))


def _coef(key: str) -> tuple[float, float]:
    """A per-configuration (slope, intercept), deliberately not proportional to MACs."""
    rng = random.Random(key)
    return rng.uniform(0.5, 3.0) * 1e-9, rng.uniform(1.0, 5.0) * 1e-6


def known_latency(graph, groups=None) -> float:
    """The synthetic table's latency, computed straight from its formula (no interpolation)."""
    from wtc.graph.cost import channels

    c = channels(graph, groups)
    total = OVERHEAD
    for n in timed_nodes(graph):
        slope, icpt = _coef(layer_key(graph, n))
        sizes = [sum(c[g] for g in ax) for ax in layer_axes(graph, n)]
        prod = sizes[0] * (sizes[1] if len(sizes) == 2 else 1)
        total += slope * prod * _area(graph, n) + icpt
    return total


def _area(graph, n) -> int:
    hw = graph.nx.nodes[n]["in_hw"]
    return hw[0] * hw[1] if hw else 1


def synthetic_table(graph, runtime: str = "torch-cpu") -> dict:
    """A table with known per-layer costs on the profiler's own grid: slope·(Π channels)·area +
    intercept, multilinear, so interpolation reproduces it everywhere."""
    layers = []
    for p in plan_layers(graph, points=4, max_multiplier=2.0):
        slope, icpt = _coef(p.key)
        area = _area(graph, p.node)
        if len(p.grid) == 1:
            med = [slope * a * area + icpt for a in p.grid[0]]
        else:
            med = [[slope * a * b * area + icpt for b in p.grid[1]] for a in p.grid[0]]
        layers.append({"key": p.key, "grid": p.grid, "median": med})
    return {"format": FORMAT, "spec": {"name": graph.spec.name, "hash": graph.spec_hash},
            "runtime": runtime, "threads": 1, "batch": 1, "overhead_s": OVERHEAD,
            "machine": {"host": "synthetic"}, "layers": layers}


@pytest.fixture
def table_file(tmp_path):
    def make(name: str, runtime: str = "torch-cpu"):
        path = tmp_path / f"{name}.{runtime}.json"
        path.write_text(json.dumps(synthetic_table(graph_of(name), runtime)))
        return path
    return make


# --------------------------------------------------------------------------- the models


def test_macs_model_is_count_macs_and_its_terms_are_mac_terms():
    from wtc.graph.cost import mac_terms

    g = graph_of("mbv2_tiny")
    w = uniform_widths(g, multiplier=0.5).groups
    assert MacsCost().cost(g, w) == count_macs(g, w)
    assert MacsCost().terms(g) == mac_terms(g)
    assert ParamsCost().cost(g, w) == count_params(g, w)
    assert parse_cost(None).name == parse_cost("macs").name == "macs"


def test_default_cost_leaves_widths_files_unchanged():
    g = graph_of("resnet_tiny")
    plain = wtc.search(g, "uniform", "0.5x").widths.to_json()
    named = wtc.search(g, "uniform", "0.5x", cost="macs").widths.to_json()
    plain["provenance"].pop("cost")  # holds the seconds the run took
    named["provenance"].pop("cost")
    assert plain == named and "cost_model" not in plain["provenance"]
    assert plain["macs"]["target"] == round(0.5 * count_macs(g))


@pytest.mark.parametrize("text, cost, expected", [
    ("0.5x", "macs", None), ("41M", "macs", 41_000_000), ("4.1e7", "macs", 41_000_000),
    ("3ms", "latency", 3e-3), ("250us", "latency", 250e-6), ("0.002s", "latency", 2e-3),
])
def test_targets_read_in_the_cost_models_unit(text, cost, expected, table_file):
    g = graph_of("resnet_tiny")
    model = parse_cost("macs" if cost == "macs" else f"latency:{table_file('resnet_tiny')}")
    value = parse_target(g, text, model)
    assert value == pytest.approx(expected if expected is not None
                                  else round(0.5 * count_macs(g)))


@pytest.mark.parametrize("text, cost, message", [
    ("3ms", "macs", "is a latency"), ("41M", "latency", "give a time"),
    ("-1ms", "latency", "positive"), ("fast", "macs", "cannot read MACs target"),
])
def test_bad_targets_say_what_to_give(text, cost, message, table_file):
    g = graph_of("resnet_tiny")
    model = parse_cost("macs" if cost == "macs" else f"latency:{table_file('resnet_tiny')}")
    with pytest.raises(TargetError, match=message):
        parse_target(g, text, model)


def test_bad_cost_names_are_refused():
    with pytest.raises(wtc.errors.RegistryError, match="choose one of"):
        parse_cost("energy")
    with pytest.raises(ConfigError, match="needs an argument"):
        parse_cost("latency")
    with pytest.raises(ConfigError, match="takes no argument"):
        parse_cost("macs:x")


# --------------------------------------------------------------------------- the table


def test_latency_is_exactly_the_known_per_layer_costs(table_file):
    g = graph_of("mbv2_tiny")
    model = parse_cost(f"latency:{table_file('mbv2_tiny')}")
    rng = random.Random(0)
    st = steps(g)
    for _ in range(5):  # random group-respecting widths, on and off the grid
        w = {gr: st[gr] * rng.randint(1, 2 * g.groups[gr].base // st[gr]) for gr in st}
        assert model.cost(g, w) == pytest.approx(known_latency(g, w), rel=1e-9)


def test_interpolation_is_exact_on_grid_points_and_monotone_between():
    table = table_from_json({
        "format": FORMAT, "spec": {"name": "x", "hash": "h"}, "runtime": "torch-cpu",
        "threads": 1, "batch": 1,
        "layers": [{"key": '{"op":"a"}', "grid": [[8, 16, 32]], "median": [1.0, 1.5, 4.0]},
                   {"key": '{"op":"b"}', "grid": [[8, 16], [4, 12, 20]],
                    "median": [[1.0, 2.0, 2.5], [1.5, 3.0, 7.0]]}]})
    one, two = table.entries['{"op":"a"}'], table.entries['{"op":"b"}']
    for x, y in zip((8, 16, 32), (1.0, 1.5, 4.0), strict=True):
        assert one.at([x]) == y
    for i, a in enumerate((8, 16)):
        for j, b in enumerate((4, 12, 20)):
            assert two.at([a, b]) == [[1.0, 2.0, 2.5], [1.5, 3.0, 7.0]][i][j]
    ys = [one.at([x]) for x in range(8, 33)]
    assert all(a <= b for a, b in itertools.pairwise(ys))
    for a in range(8, 17):
        row = [two.at([a, b]) for b in range(4, 21)]
        assert all(p <= q for p, q in itertools.pairwise(row))
    for b in range(4, 21):
        col = [two.at([a, b]) for a in range(8, 17)]
        assert all(p <= q for p, q in itertools.pairwise(col))


def test_a_table_for_other_layers_is_refused(table_file):
    model = parse_cost(f"latency:{table_file('resnet_tiny')}")
    with pytest.raises(ConfigError, match=r"profiled for spec 'resnet_tiny'.*no entry"):
        model.check(graph_of("mbv2_tiny"))
    with pytest.raises(ConfigError, match="no entry"):
        uniform_widths(graph_of("mbv2_tiny"), target_macs=1e-4, cost=model)


def test_a_table_for_another_runtime_is_refused(table_file):
    path = table_file("resnet_tiny", "onnxruntime-cpu")
    with pytest.raises(ConfigError, match="runtime 'onnxruntime-cpu', not 'torch-cpu'"):
        parse_cost(f"latency:{path}@torch-cpu")
    assert parse_cost(f"latency:{path}@onnxruntime-cpu").table.runtime == "onnxruntime-cpu"


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.update(format="x"), "not a latency table"),
    (lambda t: t.update(runtime="tpu"), "unknown runtime"),
    (lambda t: t["layers"][0].update(grid=[[4, 2]]), "ascending"),
    (lambda t: t["layers"][0].update(median=[1.0]), "values along this axis"),
    (lambda t: t.update(threads=0), "positive integer"),
])
def test_broken_tables_say_what_is_wrong(mutate, message):
    t = copy.deepcopy(synthetic_table(graph_of("resnet_tiny")))
    mutate(t)
    with pytest.raises(ConfigError, match=message):
        table_from_json(t)


def test_the_per_network_fit_recovers_overhead_and_scale_and_resists_one_outlier():
    from wtc.graph.latency import fit_network

    sums = [1e-3, 2e-3, 3e-3, 4e-3, 5e-3]
    measured = [5e-4 + 1.5 * s for s in sums]
    overhead, scale = fit_network(sums, measured)
    assert overhead == pytest.approx(5e-4) and scale == pytest.approx(1.5)
    measured[2] *= 3  # one sample hit by another process
    overhead, scale = fit_network(sums, measured)
    assert abs(scale - 1.5) < 0.3 and abs(overhead - 5e-4) < 5e-4
    assert fit_network([2e-3], [3e-3]) == pytest.approx((1e-3, 1.0))


def test_scale_and_overhead_enter_the_prediction(table_file):
    g = graph_of("resnet_tiny")
    t = synthetic_table(g)
    t["scale"] = 2.0
    model = LatencyCost(table_from_json(t))
    assert model.cost(g) == pytest.approx(OVERHEAD + 2.0 * (known_latency(g) - OVERHEAD))
    assert sum(model.node_costs(g).values()) + OVERHEAD == pytest.approx(model.cost(g))


def test_onnxruntime_tables_leave_out_what_it_fuses_into_convolutions():
    g = graph_of("resnet_tiny")
    every, ort = timed_nodes(g), timed_nodes(g, "onnxruntime-cpu")
    assert set(ort) < set(every)
    for n in set(every) - set(ort):  # a bn after a conv, a relu after those
        a = g.nx.nodes[n]
        assert a["op"] == "bn" or a.get("fn") in ("relu", "relu6")
    assert not [n for n in ort if g.nx.nodes[n]["op"] == "bn"
                and g.nx.nodes[g.nx.nodes[n]["inputs"][0]]["op"] == "conv"]


def test_another_machine_is_warned_about(table_file):
    model = parse_cost(f"latency:{table_file('resnet_tiny')}")
    assert any("another machine" in w for w in model.warnings())


# --------------------------------------------------------------------------- the optimizers


def _latency_target(name, table_file, fraction=0.6):
    g = graph_of(name)
    model = parse_cost(f"latency:{table_file(name)}")
    return g, model, fraction * model.cost(g)


@pytest.mark.parametrize("name", ["resnet_tiny", "mbv2_tiny", "se_concat_tiny"])
def test_uniform_lands_on_the_latency_target(name, table_file):
    g, model, target = _latency_target(name, table_file)
    res = wtc.search(g, "uniform", target, cost=model)
    achieved = model.cost(g, res.groups)
    assert abs(achieved - target) <= 0.01 * target
    rec = res.widths.provenance["cost_model"]
    assert rec["name"] == "latency" and rec["runtime"] == "torch-cpu"
    assert rec["achieved"] == pytest.approx(achieved) and res.widths.target_macs is None


def test_scale_to_a_latency_target_differs_from_scaling_to_macs(table_file):
    g, model, target = _latency_target("mbv2_tiny", table_file)
    direction = {gr: float(g.groups[gr].base) for gr in g.free_groups}
    by_latency, _ = scale_to_macs(g, direction, target, cost=model)
    assert abs(model.cost(g, by_latency) - target) <= 0.01 * target
    with pytest.raises(TargetError, match=r"latency target .* below the smallest network"):
        scale_to_macs(g, direction, 1e-9, cost=model)


@pytest.mark.parametrize("method, settings", [
    ("morphnet", {"strength": 3.0}),
    ("autoslim", {"epochs": 1, "eval_batches": 1, "bn_batches": 1, "steps": 5}),
    ("dmcp", {"samples": 3, "held_out": 0.2, "bn_batches": 1}),
])
def test_every_trained_optimizer_lands_on_the_latency_target(method, settings, table_file):
    g, model, target = _latency_target("resnet_tiny", table_file)
    res = wtc.search(g, method, f"{target}s" if method == "dmcp" else target,
                     settings=settings, data=SYNTH, epochs=1, threads=1, cost=model)
    achieved = model.cost(g, res.groups)
    assert abs(achieved - target) <= 0.01 * target, (method, achieved, target)
    assert res.widths.provenance["cost_model"]["target"] == pytest.approx(target)


def test_morphnet_weights_groups_by_latency_not_macs(table_file):
    from wtc.graph.cost import mac_terms

    g = graph_of("mbv2_tiny")
    model = parse_cost(f"latency:{table_file('mbv2_tiny')}")
    terms, macs = model.terms(g), mac_terms(g)
    assert [t.node for t in terms] == [t.node for t in macs]
    assert any(abs(a.coef / b.coef - terms[0].coef / macs[0].coef) > 1e-6
               for a, b in zip(terms, macs, strict=True))
    assert model.linear_cost(g) == pytest.approx(count_macs(g))  # normalised to base MACs


# --------------------------------------------------------------------------- transfer


def test_transfer_lands_on_the_latency_target(table_file, tmp_path):
    from wtc.widthtransfer import transfer

    src = graph_of("resnet_tiny")
    widths = uniform_widths(src, multiplier=0.75)
    model = parse_cost(f"latency:{table_file('resnet_tiny')}")
    target = 0.8 * model.cost(src)
    res = transfer(widths, src, src, target_macs=target, cost=model)
    assert abs(model.cost(src, res.widths.groups) - target) <= 0.01 * target
    assert res.cost_model["runtime"] == "torch-cpu" and res.widths.target_macs is None
    searched = widths.with_provenance(cost_model={"runtime": "onnxruntime-cpu", "table": "t"})
    with pytest.raises(TransferError, match="'onnxruntime-cpu' latency"):
        transfer(searched, src, src, target_macs=target, cost=model)


# --------------------------------------------------------------------------- the CLI


def test_cli_search_and_show_with_a_latency_table(cli, table_file, tmp_path):
    spec = TINY / "resnet_tiny.yaml"
    table = table_file("resnet_tiny")
    g = graph_of("resnet_tiny")
    target = 0.7 * parse_cost(f"latency:{table}").cost(g)
    out = tmp_path / "w.json"
    code, stdout, stderr = cli("search", str(spec), "-m", "uniform", "--cost",
                               f"latency:{table}", "--target", f"{target * 1e3:.6f}ms",
                               "-o", str(out))
    assert code == 0, stderr
    assert "another machine" in stderr and "latency" in stdout
    rec = json.loads(out.read_text())["provenance"]["cost_model"]
    assert abs(rec["achieved"] - target) <= 0.01 * target and rec["table"] == str(table)
    code, stdout, _ = cli("show", str(spec), "-w", str(out), "--cost", f"latency:{table}")
    assert code == 0 and "latency" in stdout and " ms" in stdout


def test_cli_refuses_a_table_for_another_spec_with_exit_2(cli, table_file, tmp_path):
    out = tmp_path / "w.json"
    code, _, stderr = cli("search", str(TINY / "mbv2_tiny.yaml"), "-m", "uniform", "--cost",
                          f"latency:{table_file('resnet_tiny')}", "--target", "0.5x",
                          "-o", str(out))
    assert code == 2 and "no entry" in stderr and "Traceback" not in stderr
    assert not out.exists()
    code, _, stderr = cli("search", str(TINY / "resnet_tiny.yaml"), "-m", "uniform",
                          "--target", "3ms", "-o", str(out))
    assert code == 2 and "is a latency" in stderr and not out.exists()


# --------------------------------------------------------------------------- experiments


def _plan(folder, **target):
    from wtc.experiment import load_plan

    plan = {"name": "lat", "target": {"spec": str(TINY / "resnet_tiny.yaml"), **target},
            "data": SYNTH, "methods": {"morphnet": {"epochs": 1}},
            "proxies": {"half": {"width": 0.5}}, "train": {"epochs": 1, "lr": 0.05},
            "seeds": [0]}
    path = folder / "plan.yaml"
    path.write_text(json.dumps(plan))
    return load_plan(path)


def test_a_plan_prices_its_target_units_by_the_plans_cost(tmp_path):
    from wtc.experiment import expand
    from wtc.experiment.execute import _search, _transfer

    g = graph_of("resnet_tiny")
    (tmp_path / "t.json").write_text(json.dumps(synthetic_table(g)))
    plain = _plan(tmp_path, macs="0.6x")
    priced = _plan(tmp_path, macs="0.6x", cost="latency:t.json")
    assert plain.cost is None and plain.hash() == _plan(tmp_path, macs="0.6x").hash()
    assert all("cost" not in u.params for u in expand(plain))
    units = {u.id: u for u in expand(priced)}
    assert "cost" in units["search/uniform/target"].params
    assert "cost" in units["search/morphnet/target"].params
    assert "cost" in units["transfer/morphnet/half"].params
    assert "cost" not in units["search/morphnet/half"].params  # the proxy searches in MACs
    model = priced.cost
    target = 0.6 * model.cost(g)
    assert priced.target_macs == pytest.approx(target)
    from wtc.experiment import project

    assert priced.cost_macs == uniform_widths(g, target_macs=target, cost=model).macs
    train = {p.unit: p.train_macs for p in project(priced)}
    assert train["train/uniform/seed0"] == 3 * priced.cost_macs * 160  # MACs, not seconds
    out = _search({"params": units["search/uniform/target"].params})["outputs"]
    assert abs(out["cost_model"]["achieved"] - target) <= 0.01 * target
    proxy = units["search/morphnet/half"].params
    half = uniform_widths(_graph_text(proxy["spec"]), target_macs=proxy["target_macs"])
    moved = _transfer({"params": units["transfer/morphnet/half"].params,
                       "inputs": {"search/morphnet/half": {"groups": half.groups}}})["outputs"]
    assert abs(moved["cost_model"]["achieved"] - target) <= 0.01 * target
    with pytest.raises(wtc.errors.PlanError, match=r"target\.cost"):
        _plan(tmp_path, macs="0.6x", cost="latency:missing.json")


def _graph_text(text: str):
    from wtc.spec.load import parse_spec

    return compile_spec(parse_spec(text))


def test_a_latency_plan_runs_and_its_report_shows_the_predicted_latency(tmp_path):
    from wtc.experiment import load_plan, run_experiment, write_report

    g = graph_of("resnet_tiny")
    (tmp_path / "t.json").write_text(json.dumps(synthetic_table(g)))
    plan = {"name": "lat", "target": {"spec": str(TINY / "resnet_tiny.yaml"), "macs": "0.6x",
                                      "cost": "latency:t.json"},
            "data": SYNTH, "train": {"epochs": 1, "lr": 0.05}, "seeds": [0]}
    (tmp_path / "plan.yaml").write_text(json.dumps(plan))
    out = tmp_path / "out"
    run_experiment(load_plan(tmp_path / "plan.yaml"), out, threads=1)
    write_report(out)
    report = json.loads((out / "report.json").read_text())
    (row,) = report["rows"]
    rec = row["cost_model"]
    assert abs(rec["achieved"] - rec["target"]) <= 0.01 * rec["target"]
    assert report["target"]["macs"] == row["macs"]  # the MACs the latency target came to
    text = (out / "report.md").read_text()
    assert "## Latency (predicted)" in text and " ms |" in text
    assert (out / "figures" / "top1_vs_latency.png").is_file()
