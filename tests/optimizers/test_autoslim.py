"""AutoSlim: sandwich training on the supernet, greedy slimming on held-out data, the CLI."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

import wtc
from tests.helpers import ROOT, torchrun
from wtc.nn.slimmable import Supernet
from wtc.optimizers.widthgrid import WidthGrid

pytestmark = pytest.mark.integration

TINY = "specs/tiny/resnet_tiny.yaml"
DATA = {"data": "synthetic", "synthetic_size": 384, "synthetic_test_size": 64,
        "batch_size": 64}
FAST = {"epochs": 1, "eval_batches": 1, "bn_batches": 1, "steps": 5}


def _search(tmp_path=None, resume=False, **kw):
    return wtc.search(TINY, "autoslim", "0.5x", settings={**FAST, **kw.pop("settings", {})},
                      data=DATA, seed=kw.pop("seed", 0), threads=1,
                      run_dir=tmp_path, resume=resume, **kw)


def test_greedy_meets_half_macs_trajectory_falls_and_is_reproducible(tmp_path):
    a = _search(tmp_path / "a")
    b = _search()
    graph = wtc.compile_spec(wtc.load_spec(TINY))
    target = wtc.count_macs(graph) // 2
    assert abs(a.macs - target) <= 0.01 * target
    traj = a.details["trajectory"]
    macs = [p["macs"] for p in traj]
    assert len(macs) > 2 and all(m2 < m1 for m1, m2 in itertools.pairwise(macs))
    assert macs[-1] <= target < macs[-2]
    assert a.groups == b.groups  # one seed, one result
    assert a.train_macs > 0 and a.details["greedy"]["evaluations"] >= len(traj) - 1
    saved = json.loads((tmp_path / "a" / "greedy.json").read_text())["trajectory"]
    assert [p["widths"] for p in saved] == [p["widths"] for p in traj]
    # the held-out split, not the test set, scored the candidates
    assert a.widths.provenance["settings"]["held_out"] == pytest.approx(0.2)
    assert 0 < a.details["greedy"]["held_out_images"] <= round(0.2 * 384)  # held-out split


def test_a_val_split_given_with_the_data_is_the_held_out_share():
    res = wtc.search(TINY, "autoslim", "0.5x", settings=FAST, data={**DATA, "val_split": 0.5},
                     threads=1)
    assert res.details["greedy"]["held_out_images"] == 384 // 2  # one batch of the 50% split


def test_greedy_pass_resumes_to_the_same_widths(tmp_path):
    full = _search(tmp_path)
    path = tmp_path / "greedy.json"
    traj = json.loads(path.read_text())["trajectory"]
    path.write_text(json.dumps({"trajectory": traj[:2]}))  # interrupted after step 1
    resumed = _search(tmp_path, resume=True)
    assert resumed.groups == full.groups
    assert json.loads(path.read_text())["trajectory"] == traj


def test_one_search_serves_several_targets(tmp_path):
    res = wtc.search(TINY, "autoslim", ["0.3x", "0.6x"], settings=FAST, data=DATA, threads=1)
    graph = wtc.compile_spec(wtc.load_spec(TINY))
    base = wtc.count_macs(graph)
    assert set(res.per_target) == {round(0.3 * base), round(0.6 * base)}
    for t, w in res.per_target.items():
        assert abs(w.macs - t) <= 0.01 * t
        assert w.provenance["method"] == "autoslim"


def test_sandwich_widths_are_seeded_per_step():
    graph = wtc.compile_spec(wtc.load_spec(TINY))
    grid = WidthGrid.build(graph, 1.5, 0.15, 10)
    a, b = grid.sandwich(0, 5, 4), grid.sandwich(0, 5, 4)
    assert a == b and a[0] == grid.max and a[1] == grid.min and len(a) == 4
    assert grid.sandwich(0, 6, 4)[2:] != a[2:]
    div = graph.spec.divisor
    for w in a[2:]:
        assert all(grid.min[g] <= v <= grid.max[g] and v % div == 0 for g, v in w.items())
    for g, pts in grid.steps.items():
        assert pts[0] == grid.min[g] and pts[-1] == grid.max[g] and list(pts) == sorted(pts)


@pytest.mark.parametrize("bad, match", [
    ({"min_multiplier": 2.0}, "min_multiplier"),
    ({"samples": 0}, "samples"),
    ({"held_out": 0}, "held_out"),
    ({"held_out": 1}, "held_out"),
])
def test_bad_settings_fail_before_training(cli, bad, match):
    sets = [a for k, v in bad.items() for a in ("--set", f"{k}={v}")]
    code, out, err = cli("search", TINY, "--method", "autoslim", "--data", "synthetic", *sets)
    assert code == 2
    assert match in err and "Traceback" not in err + out


def test_cli_writes_one_widths_file_per_target(cli, tmp_path):
    out = tmp_path / "w.json"
    code, _, err = cli("search", TINY, "--method", "autoslim", "--data", "synthetic",
                       "--target-macs", "0.4x,0.7x", "--set", "epochs=1",
                       "--set", "eval_batches=1", "--set", "bn_batches=1",
                       "--set", "steps=4", "-o", out, "--threads", "1")
    assert code == 0, err
    files = sorted(p.name for p in tmp_path.glob("w*.json"))
    assert files == ["w.0.4x.json", "w.0.7x.json"]
    graph = wtc.compile_spec(wtc.load_spec(TINY))
    for f in files:
        w = wtc.load_widths(tmp_path / f, graph)
        assert abs(w.macs - w.target_macs) <= 0.01 * w.target_macs


_DDP_SCRIPT = """
import os, sys, torch
import wtc
from wtc.data import make_data
from wtc.nn.slimmable import Supernet
from wtc.optimizers.sandwich import SandwichHooks
from wtc.nn.slimmable import Supernet
from wtc.optimizers.widthgrid import WidthGrid
from wtc.trainer import TrainConfig, fit, seed_everything

graph = wtc.compile_spec(wtc.load_spec(sys.argv[1]))
grid = WidthGrid.build(graph, 1.5, 0.15, 10)
seed_everything(0)
net = Supernet(graph, grid.max)
cfg = TrainConfig(data="synthetic", synthetic_size=128, synthetic_test_size=32, batch_size=16,
                  epochs=1, threads=1, lr=0.1)
data = make_data(cfg.data, channels=1, resolution=16, num_classes=4)
hooks = SandwichHooks(grid, samples=4, seed=0)
res = fit(net, data, cfg, hooks=hooks, evaluate_test=False, forward_macs=1)
rank = int(os.environ["RANK"])
torch.save(res.model.state_dict(), os.path.join(sys.argv[2], f"rank{rank}.pt"))
"""


def test_sandwich_step_under_torchrun_keeps_ranks_identical(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    proc = torchrun(script, ROOT / TINY, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    torch.manual_seed(0)
    init = Supernet(wtc.compile_spec(wtc.load_spec(TINY))).state_dict()
    changed = 0
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        changed += int(not torch.equal(r0[k], init[k])) if r0[k].is_floating_point() else 0
    assert changed > 0
