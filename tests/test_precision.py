"""Precision and memory format: `auto` read from the hardware, bf16 + channels_last on every
path that trains or evaluates (fit, evaluation, supernet sandwich, DMCP α steps, greedy
scoring), recorded where the run is recorded, and the committed experiments untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import ROOT
from test_train import small_cfg, tiny_net

import wtc
from wtc.data import make_data
from wtc.errors import ConfigError
from wtc.experiment import load_plan
from wtc.experiment.status import ledger_status
from wtc.experiment.units import expand
from wtc.optimizers import search
from wtc.trainer import FP32, Runtime, TrainConfig, evaluate, fit
from wtc.trainer.precision import cpu_bf16_flags, resolve_precision, resolve_runtime

CPU = torch.device("cpu")
SYNTH = {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 32,
         "batch_size": 16}


def test_auto_is_read_from_the_cpu_flags(tmp_path):
    with_bf16 = tmp_path / "epyc"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512vl\n")
    without = tmp_path / "old"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert cpu_bf16_flags(str(with_bf16)) == ("avx512_bf16",)
    assert cpu_bf16_flags(str(without)) == ()
    assert cpu_bf16_flags(str(arm)) == ("bf16",)
    assert cpu_bf16_flags(str(tmp_path / "missing")) == ()
    expected = "bf16" if cpu_bf16_flags() else "fp32"  # this machine's own flags
    assert resolve_precision("auto", CPU) == expected
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_runtime("auto", "auto", CPU) == Runtime(expected, True)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ConfigError, match="replaced by precision"):
        TrainConfig.load(None, data="synthetic", amp=False)


@pytest.mark.parametrize("precision,channels_last", [("fp32", False), ("bf16", True)])
def test_both_precisions_train_and_the_run_records_which(tmp_path, precision, channels_last):
    cfg = small_cfg(epochs=3, synthetic_size=1024, precision=precision,
                    channels_last=channels_last)
    res = fit(tiny_net(), make_data(cfg.data), cfg, out_dir=tmp_path, forward_macs=1000)
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]
    assert res.top1 > 0.5  # chance is 0.1
    assert (res.summary["precision"], res.summary["channels_last"]) == (precision,
                                                                          channels_last)
    assert wtc.trainer.load_checkpoint(tmp_path / "checkpoint.pt", tiny_net())[
        "config"]["precision"] == precision
    first = next(res.model.parameters())
    assert first.dtype == torch.float32  # autocast: the weights stay fp32
    assert first.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_auto_resolves_to_a_concrete_precision_that_is_recorded(tmp_path):
    cfg = small_cfg(epochs=1)
    assert cfg.precision == "auto" and cfg.channels_last == "auto"
    res = fit(tiny_net(), make_data(cfg.data), cfg, out_dir=tmp_path, forward_macs=1000)
    assert res.summary["precision"] == resolve_precision("auto", CPU) != "auto"
    assert res.summary["channels_last"] is True


def test_bf16_evaluation_agrees_with_fp32_on_a_trained_model():
    cfg = small_cfg(epochs=3, synthetic_size=1024, precision="fp32", channels_last=False)
    data = make_data(cfg.data)
    model = fit(tiny_net(), data, cfg, forward_macs=1000).model
    full = evaluate(model, data.test, device=CPU)
    half = evaluate(model, data.test, device=CPU, runtime=Runtime("bf16", True))
    assert full["top1"] > 0.5
    assert abs(half["top1"] - full["top1"]) <= 0.02
    assert half["loss"] == pytest.approx(full["loss"], rel=0.05)
    assert evaluate(model, data.test, device=CPU, runtime=FP32) == full


def _record_dtypes(calls):
    """An `init` that records the logits dtype of every forward, and whether the supernet ran
    gated (DMCP's α step) or not (the sandwich's weight steps)."""
    def init(model):
        def hook(module, args, output):
            calls.append((output.dtype, getattr(module, "channel_gates", None) is not None))
        model.register_forward_hook(hook)
    return init


@pytest.mark.parametrize("method,settings", [
    ("autoslim", {"epochs": 1, "held_out": 0.2, "eval_batches": 1, "bn_batches": 1,
                  "steps": 2}),
    ("dmcp", {"epochs": 2, "blocks": 3, "held_out": 0.2, "bn_batches": 1}),
])
def test_supernet_and_alpha_steps_run_in_bf16_and_record_it(method, settings):
    graph = wtc.compile_spec(wtc.load_spec(ROOT / "specs" / "tiny" / "resnet_tiny.yaml"))
    calls: list[tuple[torch.dtype, bool]] = []
    res = search(graph, method, "0.5x", settings=settings, data=SYNTH, seed=0, threads=1,
                 device="cpu", precision="bf16", channels_last=True, init=_record_dtypes(calls))
    assert res.widths.provenance["runtime"] == {"precision": "bf16", "channels_last": True}
    sandwich = [dt for dt, gated in calls if not gated]
    assert sandwich and all(dt == torch.bfloat16 for dt in sandwich)
    if method == "dmcp":
        gated = [dt for dt, g in calls if g]
        assert gated and all(dt == torch.bfloat16 for dt in gated)  # the α steps
    assert abs(res.macs - res.target_macs) <= 0.01 * res.target_macs


def test_fp32_search_records_fp32_and_uniform_records_nothing():
    graph = wtc.compile_spec(wtc.load_spec(ROOT / "specs" / "tiny" / "resnet_tiny.yaml"))
    res = search(graph, "morphnet", "0.5x", settings={"epochs": 1, "ladder": 1,
                                                      "score_epochs": 1},
                 data={**SYNTH, "val_split": 0.2}, threads=1, device="cpu", precision="fp32",
                 channels_last=False)
    assert res.widths.provenance["runtime"] == {"precision": "fp32", "channels_last": False}
    assert "runtime" not in search(graph, "uniform", "0.5x").widths.provenance


def test_committed_plans_pin_fp32_and_the_fast_path_would_rerun_their_trainings():
    """The committed plans ran before `precision` existed: they pin fp32 NCHW, which keeps
    their hashes (tests/test_committed_results.py: zero units to run); asking the same plan for
    bf16 + channels_last changes every unit that trains, and nothing else."""
    name = "width_transfer_fmnist_long"
    plan = load_plan(ROOT / "examples" / f"{name}.yaml")
    assert (plan.model.precision, plan.model.channels_last) == ("fp32", False)
    folder = ROOT / "examples" / "results" / name
    assert ledger_status(expand(plan), folder).to_run == []
    fast = load_plan_with(plan, precision="bf16", channels_last=True)
    rerun = ledger_status(expand(fast), folder).to_run
    assert rerun and all(not u.startswith("search/uniform") for u in rerun)


def load_plan_with(plan, **changes):
    from wtc.experiment.plan import resolve_plan

    data = plan.model.model_dump()
    data.update(changes)
    return resolve_plan(data, base_dir=Path(plan.file).resolve().parent, file=plan.file)


def test_auto_keeps_grouped_convolutions_in_fp32_on_cpu():
    from wtc.optimizers.base import has_grouped_conv as graph_has
    from wtc.trainer.precision import has_grouped_conv as module_has

    for name, grouped in (("mbv2_tiny", True), ("resnet_tiny", False)):
        graph = wtc.compile_spec(wtc.load_spec(ROOT / "specs" / "tiny" / f"{name}.yaml"))
        assert graph_has(graph) == module_has(wtc.build_model(graph)) == grouped
        rt = resolve_runtime("auto", "auto", CPU, grouped_conv=grouped)
        assert rt.precision == ("fp32" if grouped or not cpu_bf16_flags() else "bf16")
        assert rt.channels_last
    assert resolve_precision("bf16", CPU, grouped_conv=True) == "bf16"  # asked for: given


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_gpu_check_says_there_is_no_cuda_and_exits_0(tmp_path):
    import subprocess
    import sys

    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert res.returncode == 0, res.stderr
    assert "no CUDA device" in res.stdout


def test_a_proxy_can_search_on_larger_batches_at_a_scaled_learning_rate(tmp_path):
    from wtc.experiment import resolve_plan, run_experiment

    tiny = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")
    plan = resolve_plan({
        "name": "batches", "target": {"spec": tiny, "macs": "0.5x"},
        "data": {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 48,
                 "batch_size": 16},
        "methods": {"morphnet": {"epochs": 1, "lr": 0.05, "score_lr": 0.02}},
        "proxies": {"half": {"width": 0.5, "batch_scale": 4}, "plain": {"width": 0.5}},
        "search": {"val_split": 0.2}, "train": {"epochs": 1}, "seeds": [0],
        "precision": "bf16", "channels_last": True})
    units = {u.id: u for u in expand(plan)}
    big, plain = units["search/morphnet/half"].params, units["search/morphnet/plain"].params
    assert (big["data"]["batch_size"], big["data"]["eval_batch_size"]) == (64, 256)
    assert big["settings"]["lr"] == pytest.approx(0.2)
    assert big["settings"]["score_lr"] == pytest.approx(0.08)
    assert plain["data"]["batch_size"] == 16 and plain["settings"]["lr"] == 0.05
    assert big["runtime"] == {"precision": "bf16", "channels_last": True}
    summary = run_experiment(plan, tmp_path / "out", threads=1)
    assert not summary.stopped and "search/morphnet/half" in summary.ran
    lines = {r["unit"]: r for r in wtc.experiment.Ledger(tmp_path / "out").units()}
    assert lines["search/morphnet/half"]["runtime"] == {"precision": "bf16",
                                                        "channels_last": True}
    assert lines["train/uniform/seed0"]["runtime"]["precision"] == "bf16"


def test_a_bad_precision_is_refused_by_every_search_and_command(cli, tmp_path):
    graph = wtc.compile_spec(wtc.load_spec(ROOT / "specs" / "tiny" / "resnet_tiny.yaml"))
    with pytest.raises(ConfigError, match="precision must be"):
        search(graph, "uniform", "0.5x", precision="fp8")
    code, _, err = cli("search", ROOT / "specs" / "tiny" / "resnet_tiny.yaml", "--method",
                       "uniform", "--precision", "nope", "-o", tmp_path / "w.json")
    assert code == 2 and "precision" in err and not (tmp_path / "w.json").exists()
