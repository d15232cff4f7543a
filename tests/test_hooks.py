"""The trainer's extension point (TrainHooks) and BN recalibration (wtc.nn.recalibrate_bn)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from wtc.data import make_data
from wtc.nn import recalibrate_bn
from wtc.trainer import CHECKPOINT, TrainConfig, TrainHooks, fit


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def small_cfg(**kw) -> TrainConfig:
    base = {"data": "synthetic", "epochs": 2, "batch_size": 32, "lr": 0.1,
            "synthetic_size": 128, "synthetic_test_size": 64, "synthetic_resolution": 8,
            "synthetic_channels": 3, "synthetic_classes": 4, "device": "cpu", "threads": 1}
    base.update(kw)
    return TrainConfig(**base)


class Recording(TrainHooks):
    """Trains only the classifier, doubles the loss it backpropagates, counts steps, and keeps
    a counter as resumable state."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, int]] = []
        self.counter = torch.zeros(())

    def parameters(self, model):
        return list(model[-1].parameters())

    def step(self, model, x, y, criterion, backward):
        logits = model(x)
        loss = criterion(logits, y)
        backward(2 * loss)
        return loss.detach(), logits

    def after_step(self, model, step, total_steps):
        self.steps.append((step, total_steps))
        self.counter += 1

    def end_epoch(self, model, epoch):
        norm = float(model[-1].weight.detach().norm())
        return {"counter": int(self.counter), "weight_norm": norm}

    def state_dict(self):
        return {"counter": self.counter.clone()}

    def load_state_dict(self, state):
        self.counter = state["counter"].clone()


def test_hooks_choose_parameters_step_and_epoch_metrics(tmp_path):
    cfg = small_cfg()
    data = make_data(cfg.data)
    model = tiny_net()
    conv_before = model[0].weight.detach().clone()
    hooks = Recording()
    res = fit(model, data, cfg, hooks=hooks, out_dir=tmp_path, forward_macs=10)
    steps = len(data.train)
    assert hooks.steps == [(i, 2 * steps) for i in range(2 * steps)]
    assert torch.equal(model[0].weight, conv_before)  # not in the optimizer
    assert [r["counter"] for r in res.history] == [steps, 2 * steps]
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["weight_norm"] == res.history[-1]["weight_norm"]
    ck = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert int(ck["hooks"]["counter"]) == 2 * steps


def test_hooks_state_resumes_bit_exactly(tmp_path):
    cfg = small_cfg()
    data = make_data(cfg.data)
    straight = fit(tiny_net(), data, cfg, hooks=Recording(), out_dir=tmp_path / "a")
    fit(tiny_net(), data, cfg, hooks=Recording(), out_dir=tmp_path / "b", max_epochs=1)
    hooks = Recording()
    resumed = fit(tiny_net(seed=5), data, cfg, hooks=hooks, out_dir=tmp_path / "b",
                  resume=True)
    assert int(hooks.counter) == 2 * len(data.train)
    assert resumed.history == [
        {**r, "seconds": resumed.history[i]["seconds"],
         "seconds_total": resumed.history[i]["seconds_total"]}
        for i, r in enumerate(straight.history)]
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


class NoTest:
    """A test split that must not be touched."""

    def __iter__(self):
        raise AssertionError("the test set was read")

    def __len__(self):
        raise AssertionError("the test set was read")


def test_evaluate_test_false_never_reads_the_test_set():
    cfg = small_cfg(val_split=0.25)
    data = make_data(cfg.data)
    data.test = NoTest()
    res = fit(tiny_net(), data, cfg, evaluate_test=False)  # forward MACs measured too
    assert all("top1" not in r and "val_top1" in r for r in res.history)
    assert res.summary["top1"] is None and res.summary["val_top1"] is not None
    assert res.summary["forward_macs"] > 0


def test_hooks_and_callbacks_are_exclusive():
    cfg = small_cfg()
    with pytest.raises(TypeError, match="not both"):
        fit(tiny_net(), make_data(cfg.data), cfg, hooks=TrainHooks(),
            extra_loss=lambda m: torch.zeros(()))


def test_recalibrate_bn_measures_the_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
    model[1].running_mean.fill_(5.0)
    model.eval()
    batches = [(torch.randn(8, 3, 5, 5) * 2 + 1, torch.zeros(8)) for _ in range(3)]
    seen = recalibrate_bn(model, batches)
    assert seen == 24 and not model.training and model[1].momentum == 0.1
    with torch.no_grad():
        feats = torch.cat([model[0](x) for x, _ in batches])
    torch.testing.assert_close(model[1].running_mean, feats.mean((0, 2, 3)))
    per_batch_var = torch.stack([model[0](x).var((0, 2, 3)) for x, _ in batches]).detach()
    torch.testing.assert_close(model[1].running_var, per_batch_var.mean(0))
    assert int(model[1].num_batches_tracked) == 3
