"""DMCP (issue 10): the Markov channel model per width group, expected MACs, the MACs loss, the
read-out, and the search on the slimmable supernet.

Fast: tiny specs, synthetic data, a few steps per run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import ROOT, TINY, spec_id, torchrun
from wtc.errors import ConfigError, TargetError
from wtc.graph import compile_spec, count_macs
from wtc.nn.slimmable import Supernet, supernet_widths
from wtc.optimizers import OPTIMIZERS, search
from wtc.optimizers.dmcp import DMCP, DMCPSettings, read_out
from wtc.optimizers.dmcp_chain import MarkovChannels, chain_layout, macs_loss
from wtc.spec import load_spec
from wtc.widths import steps

pytestmark = pytest.mark.integration

SYNTH = {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 32,
         "batch_size": 32}
FAST = {"samples": 3, "held_out": 0.2, "bn_batches": 1}


def graph_of(name: str):
    return compile_spec(load_spec(ROOT / "specs" / "tiny" / f"{name}.yaml"))


def chains_of(graph, multiplier: float = 1.5, prefix: float = 0.1):
    s = DMCPSettings(max_multiplier=multiplier, prefix=prefix)
    grid = s.width_grid(graph)
    assert grid.max == supernet_widths(graph, multiplier)
    layout = chain_layout(grid.max, grid.min, s.num_blocks, steps(graph))
    return MarkovChannels(graph, layout), layout, grid.max


def randomize(chains, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in chains.alpha:
            a.copy_(torch.randn(a.shape, generator=gen) * 2.0 + 1.0)


# --------------------------------------------------------------------------- the chain


def test_default_blocks_follow_the_reference_and_every_block_has_channels():
    assert DMCPSettings(max_multiplier=1.0).num_blocks == 9
    assert DMCPSettings().num_blocks == 14 and DMCPSettings().max_multiplier == 1.5
    assert DMCPSettings(blocks=5).num_blocks == 5
    layout = chain_layout({"a": 24, "b": 160, "c": 4, "d": 8}, {"a": 2, "b": 16, "c": 1, "d": 8},
                          14)
    assert layout["a"].prefix == 2 and len(layout["a"].sizes) == 14
    assert layout["b"].prefix == 16 and set(layout["b"].sizes) == {10, 11}
    assert layout["c"].prefix == 1 and layout["c"].sizes == (1, 1, 1)  # fewer channels: K = 3
    assert layout["d"].sizes == ()  # prefix = width: a constant, no α
    del layout["d"]
    aligned = chain_layout({"a": 48, "b": 24}, {"a": 8, "b": 4}, 14, {"a": 8, "b": 4})
    assert aligned["a"].sizes == (8,) * 5 and aligned["b"].sizes == (4,) * 5  # whole steps
    odd = chain_layout({"a": 30}, {"a": 4}, 3, {"a": 4})  # 26 = 6 steps + 2: into the last
    assert odd["a"].sizes == (8, 8, 10) and odd["a"].prefix == 4
    for c in layout.values():
        assert c.prefix + sum(c.sizes) == c.width and min(c.sizes) >= 1
        assert max(c.sizes) - min(c.sizes) <= 1


@pytest.mark.parametrize("spec", TINY, ids=spec_id)
def test_forced_chains_give_the_macs_of_the_supernet_and_of_the_prefixes(spec):
    graph = compile_spec(load_spec(spec))
    chains, layout, maxw = chains_of(graph)
    chains.requires_grad_(False)
    chains.force(50.0)
    assert float(chains.expected_macs()) == pytest.approx(count_macs(graph, maxw), rel=1e-9)
    chains.force(-50.0)
    prefix = {g: c.prefix for g, c in layout.items()}
    assert float(chains.expected_macs()) == pytest.approx(count_macs(graph, prefix), rel=1e-9)


@pytest.mark.parametrize("name", ["mbv2_tiny", "se_concat_tiny", "resnet_tiny", "newops_tiny"])
def test_expected_macs_match_a_monte_carlo_expectation_over_sampled_widths(name):
    """mbv2_tiny has a 1x1 conv whose input and output are one group (E[c²], not E[c]²);
    se_concat_tiny a concat (sums of groups); newops_tiny grouped convs (chain blocks of whole
    group widths)."""
    graph = graph_of(name)
    chains, layout, _ = chains_of(graph)
    randomize(chains)
    probs = {g: p.detach().numpy() for g, p in chains.keep_probs().items()}
    rng = np.random.default_rng(0)
    n, total = 20000, 0
    for _ in range(n):
        w = {}
        for g, c in layout.items():
            kept = np.cumprod(rng.random(len(c.sizes)) < probs[g]) if c.sizes else []
            w[g] = c.channels(int(np.sum(kept)))
        total += count_macs(graph, w)
    assert float(chains.expected_macs().detach()) == pytest.approx(total / n, rel=0.01)


def test_marginals_are_a_cumulative_product_and_gates_scale_block_channels():
    graph = graph_of("resnet_tiny")
    chains, layout, maxw = chains_of(graph)
    randomize(chains)
    chains.requires_grad_(False)
    for g, p in chains.keep_probs().items():
        marg = chains.marginals()[g]
        assert torch.allclose(marg, torch.cumprod(p, 0))
        assert bool((marg[1:] <= marg[:-1]).all())
        gate = chains.gates()[g]
        c = layout[g]
        assert gate.shape == (maxw[g],) and bool((gate[:c.prefix] == 1).all())
        assert float(gate[c.prefix + c.sizes[0]]) == pytest.approx(float(marg[1]))
        assert float(gate[-1]) == pytest.approx(float(marg[-1]))
        assert chains.expected_channels()[g] == pytest.approx(c.expected(marg.tolist()))


@pytest.mark.parametrize("name", ["resnet_tiny", "mbv2_tiny"])
def test_gates_forced_to_the_prefix_compute_the_prefix_network(name):
    """The marginals scale whole groups: with every block dropped, the gated max-width
    supernet computes what the supernet computes at the prefix widths; with every block kept,
    the ungated network."""
    graph = graph_of(name)
    chains, layout, maxw = chains_of(graph)
    net = Supernet(graph, maxw).eval()  # dropout off
    x = torch.randn(4, graph.spec.input.channels, 16, 16)
    net.set_widths(maxw)
    plain = net(x)
    chains.force(50.0)
    net.channel_gates = chains.gates()
    assert torch.allclose(net(x), plain, atol=1e-5)
    chains.force(-50.0)
    net.channel_gates = chains.gates()
    gated = net(x)
    net.channel_gates = None
    net.set_widths({g: c.prefix for g, c in layout.items()})
    assert torch.allclose(gated, net(x), atol=1e-5)


def test_gradients_reach_every_alpha_from_the_task_loss_and_from_the_macs_loss():
    graph = graph_of("mbv2_tiny")
    chains, _, maxw = chains_of(graph)
    net = Supernet(graph, maxw)
    marg = chains.marginals()
    net.channel_gates = chains.gates(marg)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,))
    task = torch.nn.functional.cross_entropy(net(x), y)
    for loss in (task, macs_loss(chains.expected_macs(marg), 0.3 * count_macs(graph))):
        grads = torch.autograd.grad(loss, list(chains.alpha), retain_graph=True)
        for g, gr in zip(chains.groups, grads, strict=True):
            assert bool((gr != 0).all()), f"no gradient for some α of {g}"
    assert all(p.grad is None for p in net.parameters())


def test_alpha_can_start_at_a_target_and_search_targets_must_lie_inside_the_chains():
    graph = graph_of("resnet_tiny")
    chains, _, _ = chains_of(graph)
    chains.requires_grad_(False)
    value = chains.start_at(0.4 * count_macs(graph))
    assert all(bool((a == value).all()) for a in chains.alpha)
    assert float(chains.expected_macs()) == pytest.approx(0.4 * count_macs(graph), rel=1e-5)
    with pytest.raises(TargetError, match="raise max_multiplier"):
        search(graph, "dmcp", "2.3x", data=SYNTH)
    with pytest.raises(TargetError, match="lower prefix"):
        search(graph, "dmcp", "0.05x", settings={"prefix": 0.5}, data=SYNTH)


def test_macs_loss_is_zero_in_the_dead_zone_and_pushes_towards_it_outside():
    target = 40e6

    def value_and_grad(e: float):
        t = torch.tensor(e, dtype=torch.float64, requires_grad=True)
        loss = macs_loss(t, target)
        (g,) = torch.autograd.grad(loss, t)
        return float(loss.detach()), float(g)

    for e in (0.95 * target, 0.97 * target, target - 1):
        assert value_and_grad(e) == (0.0, 0.0)
    below, above = value_and_grad(0.5 * target), value_and_grad(1.5 * target)
    assert below[1] < 0 < above[1]  # descent raises E below the zone, lowers it above
    assert below[0] == pytest.approx(np.log(20.0))  # log(|E − T|) in MMACs, r = 1
    assert value_and_grad(target)[0] == pytest.approx(np.log(2.0))  # log(E − 0.95T)
    far = 1000e6  # |E − T| > 200 MMACs: r = 0.1
    assert macs_loss(torch.tensor(far, dtype=torch.float64), target).item() == \
        pytest.approx(np.log(0.1 * (far - 0.95 * target) / 1e6))


def test_read_out_rounds_the_expected_channels_and_rematches_the_target():
    graph = graph_of("mbv2_tiny")
    maxw = supernet_widths(graph, 1.5)
    target = count_macs(graph) // 2
    expected = {g: 0.7 * maxw[g] for g in graph.free_groups}
    groups, info = read_out(graph, expected, target, maxw)
    assert abs(count_macs(graph, groups) - target) <= 0.01 * target
    assert all(v % graph.spec.divisor == 0 for v in groups.values())
    assert info["rematch_alpha"] != 1.0
    # already on target: the rounded expected channels are kept as they are
    exact = {g: float(v) for g, v in groups.items()}
    kept, info = read_out(graph, exact, count_macs(graph, groups), maxw)
    assert kept == groups and info["rematch_alpha"] == 1.0


def test_dmcp_is_registered_and_its_settings_are_checked():
    assert "dmcp" in OPTIMIZERS.names()
    with pytest.raises(ConfigError, match="arch_lr"):
        search(graph_of("resnet_tiny"), "dmcp", "0.5x", settings={"arch_lr_min": 1.0},
               data=SYNTH)
    with pytest.raises(ConfigError, match="unknown setting"):
        search(graph_of("resnet_tiny"), "dmcp", "0.5x", settings={"blcoks": 3}, data=SYNTH)


def test_importing_dmcp_needs_no_torch():
    code = ("import sys\nimport wtc.optimizers.dmcp\n"
            "from wtc.optimizers.dmcp import DMCPSettings\nDMCPSettings()\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --------------------------------------------------------------------------- the search


def dmcp(graph, **kw):
    settings = {**FAST, **kw.pop("settings", {})}
    return search(graph, "dmcp", "0.5x", settings=settings, data=SYNTH, seed=3, epochs=4,
                  threads=1, device="cpu", **kw)


def test_search_meets_half_the_macs_within_one_percent_and_one_seed_gives_one_result(tmp_path):
    graph = graph_of("resnet_tiny")
    a = dmcp(graph, run_dir=tmp_path / "run")
    assert abs(a.macs - a.target_macs) <= 0.01 * a.target_macs
    assert a.target_macs == round(0.5 * count_macs(graph))
    b = dmcp(graph)
    assert a.groups == b.groups
    da, db = a.details["dmcp"], b.details["dmcp"]
    assert da["marginals"] == db["marginals"]
    assert da["expected_macs_per_epoch"] == db["expected_macs_per_epoch"]
    # α started in the dead zone, the architecture phase moved it, and the run recorded it
    chains, _, _ = chains_of(graph)
    assert set(da["marginals"]) == set(chains.groups)
    per_epoch = da["expected_macs_per_epoch"]
    assert per_epoch[0] == per_epoch[1] == pytest.approx(0.975 * a.target_macs, rel=1e-5)
    assert len(per_epoch) == 4 and per_epoch[3] != per_epoch[1]
    assert (tmp_path / "run" / "supernet" / "checkpoint.pt").is_file()
    record = json.loads((tmp_path / "run" / "dmcp.json").read_text())
    assert record["marginals"] == da["marginals"]
    assert [t[0] for t in record["trace"]] == list(range(8, 16))  # α steps: the second half
    assert (tmp_path / "run" / "marginals.png").stat().st_size > 0
    assert a.widths.provenance["method"] == "dmcp"
    # the dry-run projection (`wtc experiment --dry-run`) is close to what the run counted
    projected = DMCP.estimate_train_macs(graph, DMCPSettings(**FAST, epochs=4), images=160,
                                         target_macs=a.target_macs)
    assert projected == pytest.approx(a.train_macs, rel=0.15)
    assert all("val_top1" in row and "top1" not in row for row in a.history)  # no test set


def test_resume_in_the_architecture_phase_gives_the_same_widths(tmp_path, monkeypatch):
    from wtc.optimizers.dmcp_train import DMCPHooks

    graph = graph_of("resnet_tiny")
    straight = dmcp(graph)
    end_epoch = DMCPHooks.end_epoch

    def interrupted(self, model, epoch):
        if epoch == 3:  # epochs 2 and 3 are the architecture phase: stop inside it
            raise KeyboardInterrupt
        return end_epoch(self, model, epoch)

    monkeypatch.setattr(DMCPHooks, "end_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dmcp(graph, run_dir=tmp_path / "run")
    monkeypatch.undo()
    ck = torch.load(tmp_path / "run" / "supernet" / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 3 and len(ck["hooks"]["trace"]) == 4
    resumed = dmcp(graph, run_dir=tmp_path / "run", resume=True)
    assert resumed.groups == straight.groups
    assert resumed.details["dmcp"]["marginals"] == straight.details["dmcp"]["marginals"]
    assert [h["train_loss"] for h in resumed.history] == \
        [h["train_loss"] for h in straight.history]
    assert resumed.train_macs == straight.train_macs
    again = dmcp(graph, run_dir=tmp_path / "run", resume=True)  # finished: nothing trains
    assert again.groups == straight.groups
    assert again.details["dmcp"]["marginals"] == straight.details["dmcp"]["marginals"]


_DDP_SCRIPT = """
import json, os, sys
from wtc.optimizers import search
r = search(sys.argv[1], "dmcp", "0.5x", settings={"samples": 3, "held_out": 0.2,
           "bn_batches": 1}, data={"data": "synthetic", "synthetic_size": 160,
           "synthetic_test_size": 32, "batch_size": 16}, seed=3, epochs=2, threads=1,
           device="cpu")
out = {"groups": r.groups, "marginals": r.details["dmcp"]["marginals"]}
with open(os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump(out, f)
"""


def test_dmcp_under_torchrun_keeps_the_chains_identical_on_every_rank(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    proc = torchrun(script, ROOT / "specs/tiny/resnet_tiny.yaml", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1
