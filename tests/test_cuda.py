"""CUDA paths (run by scripts/gpu_check.sh on a machine with a GPU; skipped elsewhere):
bf16 and fp16 autocast, channels_last, bit-exact resume, a one-process NCCL group."""

from __future__ import annotations

import json
import socket

import pytest
import torch
from test_train import small_cfg, tiny_net

from wtc.data import make_data
from wtc.trainer import fit

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_trains_on_cuda_and_records_it(tmp_path, precision):
    cfg = small_cfg(epochs=3, synthetic_size=1024, device="cuda", precision=precision,
                    channels_last=True)
    res = fit(tiny_net(), make_data(cfg.data), cfg, out_dir=tmp_path, forward_macs=1000)
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]
    assert res.top1 > 0.5
    assert res.summary["precision"] == precision and res.summary["channels_last"] is True
    p = next(res.model.parameters())
    assert p.is_cuda and p.dtype == torch.float32
    assert p.is_contiguous(memory_format=torch.channels_last)
    assert json.loads((tmp_path / "summary.json").read_text())["precision"] == precision


def test_auto_on_cuda_is_bf16_where_supported():
    cfg = small_cfg(epochs=1, device="cuda")
    res = fit(tiny_net(), make_data(cfg.data), cfg, forward_macs=1000)
    assert res.summary["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")


def test_resume_is_bit_exact_on_cuda(tmp_path):
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    cfg = small_cfg(epochs=2, device="cuda", precision="bf16", channels_last=True)
    data = make_data(cfg.data)
    straight = fit(tiny_net(), data, cfg, out_dir=tmp_path / "a").model
    fit(tiny_net(), data, cfg, out_dir=tmp_path / "b", max_epochs=1)
    resumed = fit(tiny_net(seed=123), data, cfg, out_dir=tmp_path / "b", resume=True).model
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(),
                              strict=True):
        assert torch.equal(a, b), k


def test_one_process_nccl_group_runs_ddp(tmp_path):
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0,
                            world_size=1)
    try:
        t = torch.ones(4, device="cuda")
        dist.all_reduce(t)
        assert t.tolist() == [1.0] * 4
        model = torch.nn.parallel.DistributedDataParallel(tiny_net().cuda(), device_ids=[0])
        x = torch.rand(8, 3, 12, 12, device="cuda")
        model(x).sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
        cfg = small_cfg(epochs=1, device="cuda")  # fit inside an existing group
        res = fit(tiny_net(), make_data(cfg.data), cfg, forward_macs=1000)
        assert res.summary["world_size"] == 1
    finally:
        dist.destroy_process_group()
