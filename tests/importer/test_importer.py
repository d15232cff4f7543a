"""`wtc import` / `wtc.import_model`: torchvision models round-trip exactly (parameters, MACs,
logits), the spec keeps the stage structure so transfer, search, the supernet, training and
ONNX export run on it, and an unsupported module fails cleanly without writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import wtc
from wtc.graph import compile_spec, count_macs, count_params
from wtc.importer import ImportFailure, import_model
from wtc.spec import load_spec

pytestmark = pytest.mark.integration

# cheap at 64 px: the default tier; every op kind the importer maps is among them (conv,
# depthwise, grouped, linear, bn, ln over channels-last, layer scale, the activations, max/
# avg/adaptive/ceil-mode pools, add, mul, cat, flatten, chunk, shuffle, dropout, droppath)
FAST = ["resnet18", "mobilenet_v2", "shufflenet_v2_x1_0", "squeezenet1_1", "efficientnet_b0",
        "mobilenet_v3_small", "regnet_x_400mf", "convnext_tiny", "mnasnet1_0", "densenet121"]
SLOW = ["resnet50", "wide_resnet50_2", "resnext50_32x4d", "mobilenet_v3_large",
        "regnet_y_400mf", "vgg11_bn"]


def _round_trip(name: str, resolution: int, tracer: str = "auto", **kwargs) -> dict:
    torch.manual_seed(0)
    module = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    x = torch.randn(1, 3, resolution, resolution)
    imported = import_model(module, x, name=name, tracer=tracer)
    graph = compile_spec(imported.spec)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    model = wtc.build_model(graph, init=False).eval()
    model.load_state_dict(imported.state_dict)
    probe = torch.randn(2, 3, resolution, resolution)  # not the input it was traced on
    with torch.no_grad():
        diff = float((model(probe) - module(probe)).abs().max())
    return {"params": (count_params(graph), sum(p.numel() for p in module.parameters())),
            "macs": (count_macs(graph), counter.get_total_flops() // 2), "diff": diff,
            "spec": imported.spec}


def _check(r: dict) -> None:
    assert r["params"][0] == r["params"][1]
    assert r["macs"][0] == r["macs"][1]
    assert r["diff"] < 1e-4


@pytest.mark.parametrize("name", FAST)
def test_torchvision_models_round_trip_exactly(name):
    _check(_round_trip(name, 64))


@pytest.mark.parametrize("name", ["resnext50_32x4d", "regnet_y_400mf", "mobilenet_v3_large",
                                  "wide_resnet50_2"])
def test_the_larger_torchvision_models_round_trip_at_32_px(name):
    _check(_round_trip(name, 32))


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST + SLOW)
def test_torchvision_models_round_trip_at_224(name):
    _check(_round_trip(name, 224))


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "convnext_tiny", "densenet121"])
def test_the_torch_export_tracer_round_trips_too(name):
    r = _round_trip(name, 32, tracer="export")
    _check(r)
    if name != "convnext_tiny":  # export leaves out stochastic depth at eval (same function)
        assert r["spec"] == _round_trip(name, 32)["spec"]


SHAPE_BRANCH = '''
import torch
from torch import nn


class ShapeBranch(nn.Module):
    """fx cannot trace the branch on x.shape or the unpacking of x.size(); export can."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.proj = nn.Conv2d(8, 16, 1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        if x.shape[1] != 16:
            x = self.proj(x)
        b, c, h, w = x.size()
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)
        return self.fc(x.mean([2, 3]))
'''


def test_torch_export_takes_over_where_fx_cannot_trace(cli, tmp_path):
    (tmp_path / "branch.py").write_text(SHAPE_BRANCH)
    spec = tmp_path / "b.yaml"
    code, _, err = cli("import", f"{tmp_path / 'branch.py'}:ShapeBranch", "-o", spec,
                       "--input", "3x16x16", "--tracer", "fx")
    assert code == 2 and "control flow" in err and not spec.exists()
    code, out, err = cli("import", f"{tmp_path / 'branch.py'}:ShapeBranch", "-o", spec,
                         "--input", "3x16x16", "--json")
    assert code == 0, err
    ops = [n.op for t in load_spec(spec).templates.values() for n in t.nodes]
    assert "shuffle" in ops and json.loads(out)["max_abs_diff"] < 1e-5


def test_vgg_head_keeps_its_adaptive_pool():
    r = _round_trip("vgg11_bn", 32, num_classes=10)
    _check(r)
    head = r["spec"].templates["head"]
    assert [n.op for n in head.nodes][:2] == ["adaptive_avgpool", "flatten"]


def test_stages_follow_the_module_hierarchy():
    r = _round_trip("resnet50", 32)
    _check(r)
    spec = r["spec"]
    assert [(s.name, s.depth) for s in spec.stages] == [
        ("layer1", 3), ("layer2", 4), ("layer3", 6), ("layer4", 3)]
    graph = compile_spec(spec)
    assert "layer2.res" in graph.groups and "layer2.block0.conv1" in graph.groups
    mbv2 = _round_trip("mobilenet_v2", 32)["spec"]  # one Sequential, cut where it strides
    assert [s.depth for s in mbv2.stages] == [1, 2, 3, 4, 3, 3, 1]
    dense = _round_trip("densenet121", 32)["spec"]  # dense layers grow; transitions between
    assert [(s.name, s.depth) for s in dense.stages] == [
        ("features_denseblock1", 6), ("features_transition1", 1), ("features_denseblock2", 12),
        ("features_transition2", 1), ("features_denseblock3", 24), ("features_transition3", 1),
        ("features_denseblock4", 16)]


def _write(tmp_path: Path, name: str, resolution: int = 32) -> tuple[Path, Path]:
    torch.manual_seed(0)
    module = getattr(torchvision.models, name)(weights=None, num_classes=10).eval()
    imported = import_model(module, torch.randn(1, 3, resolution, resolution), name=name)
    spec, weights = tmp_path / f"{name}.yaml", tmp_path / f"{name}.pt"
    spec.write_text(imported.yaml)
    torch.save({"model": imported.state_dict, "spec_hash": imported.spec.structural_hash},
               weights)
    return spec, weights


def test_transfer_across_depth_between_imported_resnets(tmp_path):
    from wtc.widths import widths_from_groups

    src_path, _ = _write(tmp_path, "resnet18")
    dst_path, _ = _write(tmp_path, "resnet34")
    src, dst = compile_spec(load_spec(src_path)), compile_spec(load_spec(dst_path))
    w = widths_from_groups(src, {g: max(1, src.groups[g].base // (2 if i % 2 else 1))
                                 for i, g in enumerate(src.free_groups)})
    result = wtc.transfer(w, src, dst)
    assert not result.unmatched
    assert set(result.widths.groups) == set(dst.free_groups)
    # the narrowed layer1 block conv of resnet18 narrows every layer1 block conv of resnet34
    halved = [g for g in src.free_groups if w.groups[g] < src.groups[g].base]
    assert halved


def test_cli_import_then_search_train_export(cli, tmp_path):
    spec, weights = tmp_path / "r18.yaml", tmp_path / "r18.pt"
    code, out, err = cli("import", "torchvision.models:resnet18", "-o", spec, "--weights",
                         weights, "--input", "3x32x32", "--kwargs", '{"num_classes": 4}',
                         "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["params"] == sum(
        p.numel() for p in torchvision.models.resnet18(num_classes=4).parameters())
    code, _, err = cli("validate", spec)
    assert code == 0, err
    code, _, err = cli("search", spec, "--method", "uniform", "--target-macs", "0.5x",
                       "-o", tmp_path / "w.json")
    assert code == 0, err
    cfg = tmp_path / "train.yaml"
    cfg.write_text("synthetic_size: 16\nsynthetic_test_size: 8\nepochs: 1\n")
    code, out, err = cli("train", spec, "--widths", tmp_path / "w.json", "--data",
                         "synthetic", "--batch-size", "16", "--device", "cpu", "--config", cfg,
                         "--out", tmp_path / "run", "--json")
    assert code == 0, err
    code, _, err = cli("export", spec, "--checkpoint", weights, "--onnx", tmp_path / "r.onnx")
    assert code == 0, err
    assert (tmp_path / "r.onnx").stat().st_size > 1000


def test_supernet_runs_an_imported_spec(tmp_path):
    from wtc.nn.slimmable import Supernet

    spec, _ = _write(tmp_path, "mobilenet_v3_small")
    graph = compile_spec(load_spec(spec))
    net = Supernet(graph).eval()
    w = {g: max(graph.groups[g].multiple, graph.groups[g].base // 2)
         for g in graph.free_groups}
    net.set_widths(w)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), net.extract(w)(x), atol=1e-5)


BAD = '''
import torch
from torch import nn


class Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.softplus(self.conv(x))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > 0:
            return x
        return -x


class Net(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.body = inner
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

    def forward(self, x):
        return self.head(self.body(x))


def unsupported():
    return Net(Body())


def good(width=8):
    body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
    return Net(body)


def branchy():
    return Net(Branchy())
'''


def test_unsupported_op_exits_2_naming_node_and_module(cli, tmp_path):
    (tmp_path / "model.py").write_text(BAD)
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = cli("import", f"{tmp_path / 'model.py'}:unsupported", "-o", out / "s.yaml",
                       "--weights", out / "w.pt", "--input", "3x16x16")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in text
    assert "node 'softplus'" in text and "module 'body'" in text and "'softplus'" in text
    code, _, err = cli("import", f"{tmp_path / 'model.py'}:branchy", "-o", out / "s.yaml",
                       "--input", "3x16x16")
    text = " ".join(err.split())
    assert code == 2 and "module 'body'" in text and "control flow" in text
    assert "node 'gt'" in text and "op 'gt'" in text
    assert list(out.iterdir()) == []


def test_import_from_a_file_with_kwargs(cli, tmp_path):
    (tmp_path / "model.py").write_text(BAD)
    spec = tmp_path / "good.yaml"
    code, out, err = cli("import", f"{tmp_path / 'model.py'}:good", "-o", spec, "--input",
                         "3x16x16", "--kwargs", '{"width": 8}', "--name", "mine")
    assert code == 0, err
    assert load_spec(spec).name == "mine" and "logits match" in " ".join(out.split())


def test_depth_projections_of_imported_specs(tmp_path):
    spec, _ = _write(tmp_path, "efficientnet_b0")  # per-block stochastic depth rates
    original = load_spec(spec)
    assert any(isinstance(v, list) for s in original.stages for v in s.params.values())
    for projected in (original.scaled(depth=0.5), original.scaled(depth=2.0)):
        graph = compile_spec(projected)
        assert wtc.build_model(graph).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_bad_targets_and_inputs_exit_2(cli, tmp_path):
    for args, needle in [(["nonexistent_pkg_xyz:f"], "importing nonexistent_pkg_xyz"),
                         (["torchvision.models:nope"], "has no 'nope'"),
                         (["resnet18"], "MODULE:CALLABLE"),
                         (["torchvision.models:resnet18", "--input", "3x32x31"], "square"),
                         (["torchvision.models:resnet18", "--kwargs", "[1]"], "JSON object")]:
        code, _, err = cli("import", *args, "-o", tmp_path / "s.yaml")
        assert code == 2 and needle in " ".join(err.split()), err
    assert not (tmp_path / "s.yaml").exists()


def test_import_model_refuses_a_non_square_or_non_module_input():
    with pytest.raises(ImportFailure, match=r"square|H, H"):
        import_model(torchvision.models.resnet18(), torch.randn(1, 3, 32, 40))
    with pytest.raises(ImportFailure, match=r"torch\.nn\.Module"):
        import_model(lambda x: x, torch.randn(1, 3, 32, 32))
