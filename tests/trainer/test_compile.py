"""`compile: auto | true | false`: what auto resolves to, where a compiled step is allowed, and
that a compiled fit trains, records it and resumes bit-exactly; the fused SGD update."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import small_cfg, tiny_net
from wtc.data import make_data
from wtc.errors import ConfigError
from wtc.trainer import TrainConfig, TrainHooks, fit
from wtc.trainer import compiled as compiled_mod
from wtc.trainer.compiled import resolve_compile
from wtc.trainer.loop import fused_sgd

pytestmark = pytest.mark.integration

CPU = torch.device("cpu")


def test_auto_is_off_and_true_compiles_only_static_shapes():
    assert resolve_compile("auto", CPU) is False  # measured: no gain on this CPU
    assert resolve_compile(True, CPU) is True
    assert resolve_compile(True, CPU, static_shapes=False) is False  # a supernet's steps
    assert resolve_compile(False, CPU) is False
    with pytest.raises(ConfigError, match="compile must be true, false or auto"):
        resolve_compile("yes", CPU)  # type: ignore[arg-type]
    assert TrainConfig.load(None, data="synthetic").compile == "auto"
    with pytest.raises(ConfigError, match="compile"):
        TrainConfig.load(None, data="synthetic", compile="sometimes")


def test_the_supernet_steps_are_never_compiled():
    from wtc.optimizers.dmcp_train import DMCPHooks
    from wtc.optimizers.gamma import GammaHooks
    from wtc.optimizers.sandwich import SandwichHooks

    assert TrainHooks.static_shapes and GammaHooks.static_shapes
    assert not SandwichHooks.static_shapes and not DMCPHooks.static_shapes


@pytest.fixture
def light_backend(monkeypatch):
    """torch.compile through dynamo and AOT autograd without inductor's code generation (the
    wiring under test; `test_inductor_compiles_a_training_step` runs the real backend)."""
    monkeypatch.setattr(compiled_mod, "BACKEND", "aot_eager")


class _Counting(TrainHooks):
    def __init__(self) -> None:
        self.models: list[type] = []

    def step(self, model, x, y, criterion, backward):
        self.models.append(type(model))
        return super().step(model, x, y, criterion, backward)


def test_a_compiled_fit_trains_records_it_and_evaluates_eagerly(tmp_path, light_backend):
    cfg = small_cfg(epochs=3, synthetic_size=1024, compile=True)
    hooks = _Counting()
    res = fit(tiny_net(), make_data(cfg.data), cfg, hooks=hooks, out_dir=tmp_path,
              forward_macs=1000)
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]
    assert res.summary["compile"] is True
    assert {m.__name__ for m in hooks.models} == {"OptimizedModule"}  # the step ran compiled
    assert type(res.model).__name__ == "Sequential"  # the result (and checkpoint) is eager
    plain = fit(tiny_net(), make_data(cfg.data), small_cfg(epochs=1, synthetic_size=1024),
                forward_macs=1000)
    assert plain.summary["compile"] is False  # auto


def test_a_compiled_fit_resumes_bit_exactly(tmp_path, light_backend):
    cfg = small_cfg(epochs=2, compile=True, precision="fp32", channels_last=False)
    full = fit(tiny_net(), make_data(cfg.data), cfg, forward_macs=1000)
    fit(tiny_net(), make_data(cfg.data), cfg, out_dir=tmp_path, forward_macs=1000, max_epochs=1)
    resumed = fit(tiny_net(), make_data(cfg.data), cfg, out_dir=tmp_path, forward_macs=1000,
                  resume=True)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_fit_uses_the_fused_sgd_update_on_cpu(tmp_path):
    params = list(tiny_net().parameters())
    assert fused_sgd(params, CPU) == {"fused": True}
    assert fused_sgd(params, torch.device("meta")) == {}
    cfg = small_cfg(epochs=1)
    res = fit(tiny_net(), make_data(cfg.data), cfg, out_dir=tmp_path, forward_macs=1000)
    from wtc.trainer import load_checkpoint

    groups = load_checkpoint(tmp_path / "checkpoint.pt", tiny_net())["optimizer"]["param_groups"]
    assert all(g["fused"] for g in groups)
    assert res.history[-1]["train_loss"] < 2.3  # it trains (chance: ln 10)


def test_the_fused_update_is_bitwise_the_per_parameter_loop():
    x = torch.randn(16, 3, 12, 12).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,))
    nets = [tiny_net().to(memory_format=torch.channels_last) for _ in range(2)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                            weight_decay=5e-4, **kw)
            for n, kw in zip(nets, ({"foreach": False}, fused_sgd([], CPU)), strict=True)]
    for step in range(3):
        for net, opt in zip(nets, opts, strict=True):
            torch.manual_seed(step)  # the same dropout masks
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters(),
                                                  strict=True))


@pytest.mark.slow
def test_inductor_compiles_a_training_step():
    cfg = small_cfg(epochs=2, compile=True)
    res = fit(tiny_net(), make_data(cfg.data), cfg, forward_macs=1000)
    assert res.summary["compile"] is True
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_a_plan_recipe_may_ask_for_compile_and_committed_plans_do_not_carry_it():
    from tests.helpers import ROOT
    from wtc.errors import PlanError
    from wtc.experiment import load_plan, resolve_plan
    from wtc.experiment.units import expand

    tiny = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")
    raw = {"name": "compiled", "target": {"spec": tiny, "macs": "0.5x"},
           "data": {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 48},
           "methods": {"morphnet": {"epochs": 1}}, "train": {"epochs": 1, "compile": True},
           "seeds": [0]}
    units = {u.id: u for u in expand(resolve_plan(raw))}
    assert units["train/uniform/seed0"].params["config"]["compile"] is True
    with pytest.raises(PlanError, match=r"train\.compile"):
        resolve_plan({**raw, "train": {"epochs": 1, "compile": "sometimes"}})
    committed = load_plan(ROOT / "examples" / "width_transfer_fmnist.yaml")
    assert all("compile" not in (u.params.get("config") or {}) for u in expand(committed))
