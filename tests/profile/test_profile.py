"""`wtc profile` (issue 20): a tiny spec's latency table, valid and usable as a cost model.
The timings themselves are not asserted (the machine is shared); their shape and use are."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.helpers import ROOT
from wtc.graph import compile_spec
from wtc.graph.cost_registry import parse_cost
from wtc.graph.latency import layer_key, load_table, table_from_json, timed_nodes
from wtc.profile import plan_layers, profile_spec
from wtc.spec import load_spec
from wtc.widths import uniform_widths

pytestmark = pytest.mark.integration

SPEC = ROOT / "specs" / "tiny" / "resnet_tiny.yaml"
QUICK = {"points": 2, "repeats": 3, "min_sample": 1e-4, "network_repeats": 3,
         "network_sample": 1e-3}


def graph():
    return compile_spec(load_spec(SPEC))


def test_the_plan_covers_every_timed_layer_on_the_group_steps():
    g = graph()
    plans = plan_layers(g, points=3, max_multiplier=2.0)
    keys = {p.key for p in plans}
    assert keys == {layer_key(g, n) for n in timed_nodes(g)}
    for p in plans:
        for ax in p.grid:
            assert ax == sorted(set(ax)) and all(c > 0 for c in ax)


@pytest.mark.parametrize("runtime", ["torch-cpu", "onnxruntime-cpu"])
def test_profile_makes_a_valid_table_that_prices_the_spec(runtime, tmp_path):
    g = graph()
    seen = []
    table = profile_spec(g, runtime=runtime, **QUICK,
                         progress=lambda done, total, what: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(table))
    parsed = load_table(path)
    assert parsed.runtime == runtime and parsed.threads == 1 and parsed.batch == 1
    assert parsed.machine["cores"] >= 1 and "torch" in parsed.versions
    for layer in table["layers"]:  # medians monotone along each axis, spreads recorded
        med = layer["median"]
        rows = med if isinstance(med[0], list) else [med]
        for row in rows:
            assert all(a <= b for a, b in itertools.pairwise(row))
        assert len(layer["spread"]) == len(med)
    assert set(table["fits"]) == {"median", "min"} and table["statistic"] == "median"
    best = table_from_json(table, statistic="min")
    for key, entry in parsed.entries.items():  # the best sample never above the median
        assert all(b <= m for b, m in zip(_flat(best.entries[key].median), _flat(entry.median),
                                          strict=True))
    model = parse_cost(f"latency:{path}@{runtime}")
    small, big = (uniform_widths(g, multiplier=m).groups for m in (0.5, 1.5))
    assert 0 < model.cost(g, small) <= model.cost(g, big)
    assert model.warnings() == []  # made here


def _flat(values):
    return [x for row in values for x in row] if isinstance(values[0], list) else values


def test_cli_profile_writes_a_table_and_refuses_bad_options(cli, tmp_path):
    out = tmp_path / "t.json"
    code, stdout, stderr = cli("profile", str(SPEC), "-o", str(out), "--points", "2",
                               "--repeats", "3")
    assert code == 0, stderr
    assert "wrote" in stdout and load_table(out).spec_name == "resnet_tiny"
    bad = tmp_path / "bad.json"
    code, _, stderr = cli("profile", str(SPEC), "-o", str(out), "--points", "2",
                          "--repeats", "3", "--statistic", "min")
    assert code == 0, stderr
    assert load_table(out).raw["statistic"] == "min"
    for args, message in ((("--runtime", "tpu"), "unknown runtime"),
                          (("--statistic", "mean"), "--statistic"),
                          (("--threads", "0"), "--threads"),
                          (("--points", "1"), "--points")):
        code, _, stderr = cli("profile", str(SPEC), "-o", str(bad), *args)
        assert code == 2 and message in stderr and "Traceback" not in stderr
        assert not bad.exists()


def test_cuda_is_refused_where_there_is_none(cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "t.json"
    code, _, stderr = cli("profile", str(SPEC), "-o", str(out), "--runtime", "cuda")
    assert code == 2 and "no CUDA device" in stderr and not out.exists()


@pytest.mark.parametrize("name", ["shufflenetv2_fmnist.yaml", "tiny/newops_tiny.yaml",
                                  "tiny/se_concat_tiny.yaml"])
def test_every_grid_point_is_a_layer_that_builds_and_runs(name):
    """Grid points are sums of real group widths: a shuffle's or a grouped conv's divisibility
    holds at each of them (the layers run; nothing is timed)."""
    import torch

    from wtc.profile.measure import layer_module

    g = compile_spec(load_spec(ROOT / "specs" / name))
    with torch.inference_mode():
        for p in plan_layers(g, points=3):
            for point in itertools.product(*p.grid):
                module, inputs = layer_module(g, p.node, point, 1)
                module.eval()(*inputs)
