"""The trainer: learning, bit-exact resume, DDP on two CPU processes, checkpoints, config."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch

from tests.helpers import small_cfg, tiny_net
from wtc.data import make_data
from wtc.errors import CheckpointError, ConfigError
from wtc.trainer import (
    TrainConfig,
    TrainHooks,
    evaluate,
    fit,
    load_checkpoint,
    lr_factor,
    param_groups,
    save_checkpoint,
)

pytestmark = pytest.mark.integration


class CountingHooks(TrainHooks):
    """Plain training that counts the steps it took and the epochs it ended (a test's own
    hooks: the library's default step, observed)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.epochs: list[int] = []

    def after_step(self, model, step, total_steps):
        self.steps.append(step)

    def end_epoch(self, model, epoch):
        self.epochs.append(epoch)
        return None


def test_tiny_model_learns_synthetic(tmp_path):
    cfg = small_cfg(epochs=3, synthetic_size=1024, val_split=0.1, warmup_epochs=0.5,
                    label_smoothing=0.1)
    data = make_data(cfg.data)
    model = tiny_net()
    before = evaluate(model, data.test)
    hooks = CountingHooks()
    res = fit(model, data, cfg, out_dir=tmp_path, forward_macs=1000, hooks=hooks)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.top1 > 0.8 > 0.1 + before["top1"]  # chance is 0.1
    assert res.summary["val_top1"] > 0.8
    assert hooks.epochs == [0, 1, 2] and hooks.steps == list(range(3 * len(data.train)))
    assert res.summary["train_macs"] == 3 * 1000 * res.summary["images_seen"]
    assert res.summary["images_seen"] == 3 * data.train.num_samples
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["top1"] == res.top1
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


@pytest.mark.parametrize("precision,channels_last", [("fp32", False), ("bf16", True)])
def test_resume_is_bit_exact(tmp_path, precision, channels_last):
    cfg = small_cfg(epochs=2, warmup_epochs=0.5, schedule="cosine", precision=precision,
                    channels_last=channels_last)
    data = make_data(cfg.data)
    straight = fit(tiny_net(), data, cfg, out_dir=tmp_path / "a").model
    fit(tiny_net(), data, cfg, out_dir=tmp_path / "b", max_epochs=1)
    first = json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[0])
    resumed = fit(tiny_net(seed=123), data, cfg, out_dir=tmp_path / "b", resume=True)
    sa, sb = straight.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert [r["epoch"] for r in resumed.history] == [0, 1]
    assert resumed.history[0]["train_loss"] == first["train_loss"]


def test_resume_after_finish_is_refused(tmp_path):
    cfg = small_cfg(epochs=1)
    data = make_data(cfg.data)
    fit(tiny_net(), data, cfg, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="already finished"):
        fit(tiny_net(), data, cfg, out_dir=tmp_path, resume=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        cfg = small_cfg(epochs=2, threads=1)
        data = make_data(cfg.data)
        res = fit(tiny_net(), data, cfg, out_dir=out if rank == 0 else None,
                  forward_macs=10)
        torch.save({"state": res.model.state_dict(), "n": data.train.num_samples,
                    "seen": res.summary["images_seen"]}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_ranks_agree(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["n"] == 256  # each rank sees half of the 512 images
    assert r0["seen"] == 2 * 512  # two epochs, both ranks counted
    assert (tmp_path / "checkpoint.pt").is_file()
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2


def test_a_rank_that_finished_waits_for_its_peers_before_leaving_and_one_that_failed_does_not(
        monkeypatch):
    import torch.distributed as dist

    from wtc.trainer.distributed import leave_distributed

    waits = []
    for finished in (True, False):
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}",
                                rank=0, world_size=1)
        real = dist.barrier
        monkeypatch.setattr(dist, "barrier",
                            lambda f=finished, real=real: (waits.append(f), real()))
        leave_distributed(finished)
        monkeypatch.undo()
        assert not dist.is_initialized()
    assert waits == [True]


def test_checkpoint_errors(tmp_path):
    model = tiny_net()
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(missing, model)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        load_checkpoint(bad, model)
    good = tmp_path / "good.pt"
    save_checkpoint(good, tiny_net(width=16), spec_hash="abc", widths={"g": 16})
    shapes = r"layer '0\.weight'.*\(16, 3, 3, 3\).*\(8, 3, 3, 3\)"
    with pytest.raises(CheckpointError, match=shapes):
        load_checkpoint(good, model)
    with pytest.raises(CheckpointError, match="different spec"):
        load_checkpoint(good, tiny_net(width=16), spec_hash="xyz")
    with pytest.raises(CheckpointError, match="other widths"):
        load_checkpoint(good, tiny_net(width=16), widths={"g": 8})
    ck = load_checkpoint(good, tiny_net(width=16), spec_hash="abc", widths={"g": 16})
    assert ck["spec_hash"] == "abc"
    with pytest.raises(CheckpointError, match="lacks training state"):
        fit(tiny_net(width=16), make_data(small_cfg().data), small_cfg(), resume=good)


def test_schedule_and_param_groups():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(55, 100, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(99, 100, 0, "constant") == 1.0
    groups = param_groups(tiny_net(), 5e-4)
    assert all(p.ndim > 1 for p in groups[0]["params"]) and groups[0]["weight_decay"] == 5e-4
    assert all(p.ndim <= 1 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0
    assert len(groups[1]["params"]) == 5  # 2x(BN weight, bias) + linear bias


def test_config_yaml_and_overrides(tmp_path):
    p = tmp_path / "train.yaml"
    p.write_text("data: cifar10\nepochs: 7\nlr: 0.05\n")
    cfg = TrainConfig.load(p, lr=0.2, epochs=None)
    assert (cfg.data.data, cfg.epochs, cfg.lr) == ("cifar10", 7, 0.2)
    p.write_text("data: cifar10\nepoch: 7\n")
    with pytest.raises(ConfigError, match="epoch"):
        TrainConfig.load(p)
    with pytest.raises(ConfigError, match="fraction"):
        TrainConfig.load(None, data="synthetic", fraction=1.5)
    with pytest.raises(ConfigError, match="cannot read"):
        TrainConfig.load(tmp_path / "missing.yaml")


def test_a_train_config_holds_its_data_config_written_flat_or_nested(tmp_path):
    from wtc.data import DataConfig

    flat = TrainConfig(data="synthetic", batch_size=32, seed=3, lr=0.05, epochs=2)
    nested = TrainConfig(data=DataConfig(data="synthetic", batch_size=32, seed=3), lr=0.05,
                         epochs=2)
    assert flat == nested and isinstance(flat.data, DataConfig)
    assert (flat.data.batch_size, flat.data.seed, flat.lr) == (32, 3, 0.05)
    # what a unit records: the options given, flat; validated again it is the same config
    given = flat.as_given()
    assert given == {"data": "synthetic", "batch_size": 32, "seed": 3, "lr": 0.05, "epochs": 2}
    assert TrainConfig.model_validate(given) == flat
    assert TrainConfig.model_validate(flat.model_dump()) == flat  # the nested dump reads back
    assert TrainConfig(**flat.model_dump(), batch_size=8).data.batch_size == 8
    assert flat.flat()["batch_size"] == 32 and flat.flat()["momentum"] == 0.9
    # a data option's error is named as the user wrote it: in the file, or as its option
    p = tmp_path / "train.yaml"
    p.write_text("data: synthetic\nval_split: 2\n")
    with pytest.raises(ConfigError, match=r"in .*train.yaml: val_split: "):
        TrainConfig.load(p)
    with pytest.raises(ConfigError, match="bad command-line option: --batch-size"):
        TrainConfig.load(None, data="synthetic", batch_size=0)
    with pytest.raises(ConfigError, match="data: Field required"):
        TrainConfig.load(None, lr=0.1)
