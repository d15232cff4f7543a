"""Width search: the optimizer framework, the uniform baseline and MorphNet (issue 4).

Fast: tiny specs and synthetic data; every MorphNet run here trains for well under a second.
"""

from __future__ import annotations

import pytest
import torch

import wtc
from tests.helpers import ROOT, TINY, spec_id
from wtc.errors import ConfigError, DataError, RegistryError, TargetError
from wtc.graph import compile_spec, count_macs, node_costs
from wtc.nn import build_model, module_path
from wtc.optimizers import (
    OPTIMIZERS,
    Optimizer,
    SearchRequest,
    prepare,
    register_optimizer,
    search,
)
from wtc.optimizers.gamma import GammaRegularizer
from wtc.spec import load_spec
from wtc.widths import base_widths, load_widths

pytestmark = pytest.mark.integration

SYNTH = {"data": "synthetic", "synthetic_size": 192, "synthetic_test_size": 64,
         "batch_size": 32}


def graph_of(name: str):
    return compile_spec(load_spec(ROOT / "specs" / "tiny" / f"{name}.yaml"))


def bn_nodes(graph, group: str) -> list[str]:
    return [n for n in graph.groups[group].members if graph.nx.nodes[n]["op"] == "bn"]


def set_gamma(model, graph, group: str, value) -> None:
    """Set γ of every BN that carries `group` (the whole BN: tiny specs have no BN on a concat)."""
    for n in bn_nodes(graph, group):
        w = model.get_submodule(module_path(graph, n)).weight
        with torch.no_grad():
            w.copy_(torch.as_tensor(value, dtype=w.dtype).expand_as(w))


# --------------------------------------------------------------------------- framework


def test_registry_has_the_built_in_methods_and_refuses_duplicates():
    assert {"uniform", "morphnet"} <= set(OPTIMIZERS.names())

    class Again(Optimizer):
        name = "uniform"

    with pytest.raises(RegistryError, match="already registered"):
        register_optimizer(Again)


def test_wtc_search_is_the_public_entry():
    # `wtc.search` is the function; the optimizers live in the package wtc.optimizers
    import wtc.optimizers as package

    graph = graph_of("resnet_tiny")
    assert wtc.search(graph, "uniform").groups == base_widths(graph).groups
    assert package.search is search is wtc.search


@pytest.mark.parametrize("spec", [*TINY, ROOT / "specs" / "resnet20_fmnist.yaml",
                                  ROOT / "specs" / "mobilenetv2.yaml"], ids=spec_id)
def test_uniform_at_base_macs_is_the_base_widths(spec):
    graph = compile_spec(load_spec(spec))
    res = search(graph, "uniform")
    assert res.groups == base_widths(graph).groups
    assert res.macs == count_macs(graph) == res.target_macs
    assert res.train_macs == 0
    assert res.widths.provenance["method"] == "uniform"


@pytest.mark.parametrize("spec", TINY, ids=spec_id)
def test_uniform_meets_a_lower_target_within_one_percent(spec):
    graph = compile_spec(load_spec(spec))
    res = search(graph, "uniform", target_macs="0.5x")
    target = round(0.5 * count_macs(graph))
    assert res.target_macs == target
    assert abs(res.macs - target) <= 0.01 * target
    assert all(c % graph.spec.divisor == 0 for c in res.groups.values())


def test_uniform_accepts_absolute_targets_and_saves(tmp_path):
    graph = graph_of("resnet_tiny")
    res = search(graph, "uniform", target_macs=600_000, out=tmp_path / "w.json")
    loaded = load_widths(tmp_path / "w.json", graph)
    assert loaded.groups == res.groups
    assert loaded.target_macs == 600_000
    assert loaded.provenance["method"] == "uniform"


@pytest.mark.parametrize("kwargs,error,match", [
    ({"method": "nope"}, RegistryError, "unknown search method 'nope'.*morphnet.*uniform"),
    ({"settings": {"strenght": 1.0}}, ConfigError, "strenght: unknown setting"),
    ({"settings": {"strength": -1}}, ConfigError, "strength"),
    ({"settings": {"rounds": 0}}, ConfigError, "rounds"),
    ({"target_macs": 10}, TargetError, "below the smallest network"),
    ({"target_macs": "-1x"}, TargetError, "positive"),
    ({"target_macs": "lots"}, TargetError, "cannot read MACs target"),
    ({"data": None}, ConfigError, "give data"),
    ({"data": {"data": "cifar10"}}, DataError, "cifar10 needs --data-root"),
    ({"data": {"data": "mnist"}}, ConfigError, "bad data settings"),
    ({"data": {**SYNTH, "fraction": 2.0}}, ConfigError, "fraction"),
    ({"epochs": 0}, ConfigError, "epochs"),
])
def test_bad_input_fails_before_any_training(monkeypatch, kwargs, error, match):
    import wtc.optimizers.training as tl

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(tl, "fit", no_training)
    monkeypatch.setattr(tl, "build_model", no_training)
    args = {"method": "morphnet", "data": SYNTH, **kwargs}
    with pytest.raises(error, match=match):
        search(graph_of("resnet_tiny"), **args)


def test_settings_instances_of_another_method_are_refused():
    from wtc.optimizers.morphnet import MorphNetSettings

    with pytest.raises(ConfigError, match="do not belong"):
        prepare(graph_of("resnet_tiny"), SearchRequest("uniform", settings=MorphNetSettings()))


# --------------------------------------------------------------------------- the regularizer


def _gated_sides(graph, node: str) -> int:
    """How many sides (input, output) of a conv/linear carry BN gammas (dwconv: both or none)."""
    a = graph.nx.nodes[node]

    def gated(groups):
        return all(not graph.groups[g].fixed and bn_nodes(graph, g) for g in groups)

    return int(gated(a["in_groups"])) + int(gated(a["groups"]))


@pytest.mark.parametrize("spec", TINY, ids=spec_id)
def test_regularizer_at_unit_gammas_is_macs_weighted_by_gated_sides(spec):
    # with every γ = 1 all channels are alive and Σ r = width, so each op contributes its MACs
    # once per side that carries gammas: R_L = C·(|A_in|·Σr_out + |A_out|·Σr_in)
    graph = compile_spec(load_spec(spec))
    model = build_model(graph)
    for g in graph.free_groups:
        if bn_nodes(graph, g):
            set_gamma(model, graph, g, 1.0)
    reg = GammaRegularizer(graph, model)
    expected = sum(macs * _gated_sides(graph, n)
                   for n, (macs, _) in node_costs(graph).items() if macs)
    assert float(reg().detach()) == pytest.approx(expected, rel=1e-6)
    assert reg.alive() == {g: graph.groups[g].base for g in reg.gated}


def test_regularizer_groups_take_the_max_over_members_and_alive_is_any():
    graph = graph_of("resnet_tiny")
    model = build_model(graph)
    g = "stage2.res"  # residual stream: bn2 of both blocks and the shortcut BN
    members = bn_nodes(graph, g)
    assert len(members) == 3
    bns = [model.get_submodule(module_path(graph, n)) for n in members]
    with torch.no_grad():
        for bn in bns:
            bn.weight.fill_(0.0)
        bns[0].weight[:4] = 0.5  # channels 0-3 alive through the first member only
        bns[1].weight[2:6] = -0.8  # 2-5 alive through the second (|γ| counts)
        bns[2].weight[10] = 0.005  # below the threshold: dead
    reg = GammaRegularizer(graph, model)
    r = reg.vectors()[g]
    assert r[:2].tolist() == pytest.approx([0.5, 0.5])
    assert r[2:6].tolist() == pytest.approx([0.8] * 4)
    assert reg.alive()[g] == 6
    # the gradient reaches only the member that holds the max
    reg().backward()
    assert bns[0].weight.grad[0] > 0 and bns[1].weight.grad[0] == 0
    assert bns[1].weight.grad[3] < 0 and bns[0].weight.grad[3] == 0  # d|γ|/dγ for γ < 0


def test_regularizer_uses_alive_counts_of_the_other_side():
    # the conv stage2.block0.conv2 (in: stage2.block0.conv1, out: stage2.res): killing half of
    # the input group halves the weight its output gammas get from that conv
    graph = graph_of("plain_tiny")
    model = build_model(graph)
    for g in graph.free_groups:
        set_gamma(model, graph, g, 1.0)
    reg = GammaRegularizer(graph, model)
    full = float(reg().detach())
    gin, gout = "stage1.block0.conv", "stage1.block1.conv"
    set_gamma(model, graph, gin, [1.0] * 4 + [0.0] * 4)
    node = graph.groups[gout].producers[0]
    macs = node_costs(graph)[node][0]
    coef = macs / (8 * 8)
    # the conv between gin and gout loses: C·(4 dead · Σr_out) + C·(|A_out| · 4 dead γ)
    # and the conv producing gin loses C·|A_in|·4 (stem input: 1 fixed channel)
    stem = graph.groups[gin].producers[0]
    coef_stem = node_costs(graph)[stem][0] / (1 * 8)
    expected = full - coef * (4 * 8 + 8 * 4) - coef_stem * 1 * 4
    assert float(reg().detach()) == pytest.approx(expected, rel=1e-6)
    assert reg.alive()[gin] == 4


def test_depthwise_ops_count_both_sides_of_their_one_group():
    graph = graph_of("mbv2_tiny")
    model = build_model(graph)
    g = "stage2.block0.expand"  # expand conv + depthwise conv share this group
    for grp in graph.free_groups:
        set_gamma(model, graph, grp, 0.0)
    set_gamma(model, graph, g, 1.0)
    reg = GammaRegularizer(graph, model)
    costs = node_costs(graph)
    dw = "stage2.block0.dw"
    assert graph.nx.nodes[dw]["op"] == "dwconv"
    # only gammas of g are non-zero, and every other group has 0 alive channels: the expand
    # conv (in: dead stage1.res) contributes C·0·Σr + C·|A_out|·0 = 0 ... except through
    # Σr_out times |A_in| = 0; the dwconv contributes C·(Σr_in + Σr_out) = 2·MACs_dw; the
    # project conv (out dead) contributes 0 likewise.
    assert float(reg().detach()) == pytest.approx(2 * costs[dw][0], rel=1e-6)


def test_groups_without_bn_are_constants_not_gammas():
    graph = graph_of("se_concat_tiny")
    model = build_model(graph)
    reg = GammaRegularizer(graph, model)
    assert "stage2.block0.se_reduce" in reg.ungated
    assert "stage2.block0.se_reduce" not in reg.alive()
    assert set(reg.gated) | set(reg.ungated) == set(graph.free_groups)


def test_zero_dead_clears_gamma_of_dead_channels_only():
    graph = graph_of("resnet_tiny")
    model = build_model(graph)
    g = "stage1.block0.conv1"
    bn = model.get_submodule(module_path(graph, bn_nodes(graph, g)[0]))
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1, 0.001, 1, -0.002, 1, 1, 1, 1.0]))
        bn.bias.fill_(0.3)
    reg = GammaRegularizer(graph, model)
    assert reg.zero_dead() == 2
    assert bn.weight[1] == 0 and bn.weight[3] == 0
    assert torch.allclose(bn.bias.detach(), torch.full((8,), 0.3))  # β is kept
    assert float(bn.bias[0].detach()) == pytest.approx(0.3)
    assert float(bn.weight[0].detach()) == 1


# --------------------------------------------------------------------------- MorphNet


def planted(graph, small: str, large: str):
    def init(model):
        set_gamma(model, graph, small, 1e-3)
        set_gamma(model, graph, large, 2.0)

    return init


@pytest.mark.parametrize("name,small,large", [
    ("resnet_tiny", "stage2.block0.conv1", "stage2.block1.conv1"),
    ("mbv2_tiny", "stage3.block0.expand", "stage3.block1.expand"),
])
def test_morphnet_shrinks_a_planted_small_group_and_keeps_a_large_one(name, small, large):
    graph = graph_of(name)
    res = search(graph, "morphnet", settings={"strength": 10.0, "lr": 0.02}, data=SYNTH,
                 epochs=2, init=planted(graph, small, large), threads=1)
    uni = wtc.uniform_widths(graph, target_macs=res.target_macs).groups
    base = {g: graph.groups[g].base for g in graph.free_groups}
    assert res.details["alive"][small] < 0.75 * base[small]
    assert res.details["alive"][large] == base[large]
    assert res.groups[small] <= 0.7 * uni[small]
    assert res.groups[large] >= uni[large]
    # meets the target (the spec's MACs) within 1%, respects groups and divisor
    assert abs(res.macs - res.target_macs) <= 0.01 * res.target_macs
    assert set(res.groups) == set(graph.free_groups)
    assert all(c % graph.spec.divisor == 0 and c >= graph.spec.divisor
               for c in res.groups.values())
    build_model(graph, res.widths)(torch.zeros(2, graph.spec.input.channels, 16, 16))


def test_morphnet_is_deterministic_for_a_seed():
    graph = graph_of("mbv2_tiny")
    init = planted(graph, "stage3.block0.expand", "stage3.block1.expand")
    a = search(graph, "morphnet", settings={"strength": 3.0}, data=SYNTH, epochs=2, init=init,
               seed=3, threads=1)
    b = search(graph, "morphnet", settings={"strength": 3.0}, data=SYNTH, epochs=2, init=init,
               seed=3, threads=1)
    assert a.groups == b.groups
    assert a.details["alive"] == b.details["alive"]
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


@pytest.mark.parametrize("spec", TINY, ids=spec_id)
def test_morphnet_runs_on_every_block_family_and_user_template(spec, tmp_path):
    graph = compile_spec(load_spec(spec))
    res = search(graph, "morphnet", target_macs="0.6x", settings={"strength": 5.0},
                 data=SYNTH, epochs=1, threads=1, out=tmp_path / "w.json")
    target = round(0.6 * count_macs(graph))
    # within 2%: in these tiny nets one channel of a group can be worth more than 1% of MACs
    assert abs(res.macs - target) <= 0.02 * target
    assert all(c % graph.spec.divisor == 0 for c in res.groups.values())
    loaded = load_widths(tmp_path / "w.json", graph)
    assert loaded.groups == res.groups
    p = loaded.provenance
    assert p["method"] == "morphnet" and p["seed"] == 0
    assert p["data"]["data"] == "synthetic" and p["settings"]["epochs"] == 1
    assert p["settings"]["strength"] == 5.0
    assert p["lambda"] == pytest.approx(5.0 / count_macs(graph))
    # training MACs: 3 x forward MACs x images seen (192 images, drop_last batches of 32)
    assert p["cost"]["train_macs"] == 3 * count_macs(graph) * 192
    assert p["cost"]["seconds"] > 0
    assert loaded.target_macs == target


def test_morphnet_rounds_repeat_shrink_and_expand():
    graph = graph_of("resnet_tiny")
    res = search(graph, "morphnet", settings={"strength": 3.0, "rounds": 2, "lam": None},
                 data=SYNTH, epochs=1, threads=1)
    rounds = res.details["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert rounds[-1]["widths"] == res.groups
    assert [h["round"] for h in res.history] == [0, 1]
    # the second round trains the expanded network of the first
    assert res.train_macs == 3 * 192 * (count_macs(graph) + count_macs(graph, rounds[0]["widths"]))


def test_absolute_lambda_overrides_strength():
    graph = graph_of("resnet_tiny")
    res = search(graph, "morphnet", settings={"lam": 1e-12}, data=SYNTH, epochs=1, threads=1)
    assert res.details["lambda"] == 1e-12
    # a negligible λ kills nothing: the widths stay (close to) uniform
    assert res.details["alive"] == {g: graph.groups[g].base for g in res.details["alive"]}


def test_importing_search_and_the_uniform_baseline_need_no_torch():
    import subprocess
    import sys

    code = ("import sys, wtc\n"
            "g = wtc.compile_spec(wtc.load_spec(sys.argv[1]))\n"
            "r = wtc.search(g, 'uniform', target_macs='0.5x')\n"
            "import wtc.cli.search\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code, str(ROOT / "specs/tiny/resnet_tiny.yaml")],
                   check=True, cwd=ROOT)


def test_interrupted_search_resumes_to_the_same_widths(tmp_path):
    """One epoch, then --resume to two, gives what two epochs straight give; resuming a
    finished search trains nothing and returns the same widths."""
    graph = graph_of("resnet_tiny")
    kwargs = {"settings": {"strength": 3.0}, "data": SYNTH, "seed": 1, "threads": 1}
    straight = search(graph, "morphnet", epochs=2, **kwargs)
    search(graph, "morphnet", epochs=1, run_dir=tmp_path / "run", **kwargs)
    assert (tmp_path / "run" / "round0" / "checkpoint.pt").is_file()
    resumed = search(graph, "morphnet", epochs=2, run_dir=tmp_path / "run", resume=True,
                     **kwargs)
    assert resumed.groups == straight.groups
    assert resumed.details["alive"] == straight.details["alive"]
    assert [h["train_loss"] for h in resumed.history] == \
        [h["train_loss"] for h in straight.history]
    again = search(graph, "morphnet", epochs=2, run_dir=tmp_path / "run", resume=True, **kwargs)
    assert again.groups == straight.groups and again.train_macs == straight.train_macs


def test_resume_without_a_run_dir_is_refused_before_training(tmp_path):
    graph = graph_of("resnet_tiny")
    with pytest.raises(ConfigError, match="run_dir"):
        prepare(graph, SearchRequest("morphnet", data=SYNTH, resume=True))
    with pytest.raises(ConfigError, match="not a search run directory"):
        prepare(graph, SearchRequest("morphnet", data=SYNTH, run_dir=tmp_path / "nope",
                                    resume=True))


@pytest.mark.parametrize("method", ["morphnet", "autoslim", "dmcp"])
def test_validating_a_search_reads_no_data(method, monkeypatch):
    """`prepare` (and each method's `check`) validates; only `run` reads the dataset."""
    from wtc.data import DATASETS

    reads = []
    make = DATASETS.get("synthetic")
    monkeypatch.setitem(DATASETS._items, "synthetic", lambda *a: reads.append(a) or make(*a))
    _, ctx, _ = prepare(graph_of("resnet_tiny"), SearchRequest(
        method, "0.5x", {"epochs": 1}, {**SYNTH, "val_split": 0.2}))
    assert reads == [] and ctx.data.data == "synthetic"


def test_the_requests_epochs_are_merged_into_the_settings_once():
    _, _, cfg = prepare(graph_of("resnet_tiny"), SearchRequest(
        "morphnet", settings={"epochs": 5, "strength": 2.0}, data=SYNTH, epochs=2))
    assert cfg.epochs == 2 and cfg.strength == 2.0  # what every round trains and records
    _, _, same = prepare(graph_of("resnet_tiny"), SearchRequest(
        "morphnet", settings={"epochs": 5}, data=SYNTH))
    assert same.epochs == 5


def test_a_training_setting_in_the_data_mapping_is_refused_not_dropped():
    """`epochs` (or lr, ...) in `data` would look applied but was silently dropped: it is named,
    before anything is read or trained."""
    with pytest.raises(ConfigError, match=r"epochs, lr belong to the search's training"):
        prepare(graph_of("resnet_tiny"), SearchRequest(
            "morphnet", "0.5x", {}, {**SYNTH, "epochs": 3, "lr": 0.1}))
