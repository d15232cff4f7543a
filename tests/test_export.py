"""`wtc.export_onnx`: every spec, non-uniform widths per block family, dynamic batch, another
resolution and trained weights give ONNX files that onnxruntime runs like torch; bad
checkpoints and failed verifications leave no file behind.

Each comparison here runs the written file in a fresh onnxruntime session, independently of the
exporter's own check, against a torch model the test builds itself.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import wtc  # noqa: E402
from wtc.errors import CheckpointError, ConfigError, ExportError, WidthsError  # noqa: E402
from wtc.export.onnx import ExportReport, export_onnx  # noqa: E402
from wtc.nn.weights import read_checkpoint  # noqa: E402
from wtc.widths import make_divisible  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))
SMALL = [p for p in SPECS if wtc.load_spec(p).input.resolution <= 64]
BIG = [p for p in SPECS if p not in SMALL]  # the 224-px ImageNet specs
FAMILIES = {  # block family -> tiny spec
    "basic": "resnet_tiny", "bottleneck": "bottleneck_tiny", "inverted_residual": "mbv2_tiny",
    "plain": "plain_tiny", "user_template": "se_concat_tiny"}
TINY = {k: ROOT / "specs" / "tiny" / f"{v}.yaml" for k, v in FAMILIES.items()}


def sid(p: Path) -> str:
    return str(p.relative_to(ROOT / "specs"))


def graph_of(path: Path, resolution: int | None = None):
    spec = wtc.load_spec(path)
    if resolution is not None:
        spec = spec.scaled(resolution=resolution)
    return wtc.compile_spec(spec)


def randomize(model) -> None:
    """Weights with O(1) BN statistics and head, so the comparison is not of near-zeros."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.in_features ** 0.5)


def random_checkpoint(graph, groups, path: Path, bare: bool = False):
    """A model with random weights saved as a checkpoint; returns the model (eval mode)."""
    model = wtc.build_model(graph, groups)
    randomize(model)
    state = model.state_dict()
    obj = state if bare else {"model": state, "spec_hash": graph.spec_hash,
                              "widths": dict(model.widths)}
    torch.save(obj, path)
    return model.eval()


def ort_outputs(path: Path, x) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x.numpy()})[0]


def assert_matches(path: Path, model, x) -> None:
    with torch.no_grad():
        ref = model(x).numpy()
    got = ort_outputs(path, x)
    assert got.shape == ref.shape
    err = np.abs(got - ref).max() / max(1.0, np.abs(ref).max())
    assert err <= 1e-4, err


def nonuniform(graph) -> dict[str, int]:
    """Per-group channels at different multipliers (rounded to the divisor)."""
    factors = itertools.cycle([0.5, 1.25, 0.75, 1.5, 1.0])
    d = graph.spec.divisor
    groups = {g: make_divisible(graph.groups[g].base * f, d)
              for g, f in zip(graph.free_groups, factors, strict=False)}
    ratios = {groups[g] / graph.groups[g].base for g in groups}
    assert len(ratios) > 1
    return groups


def assert_no_leftovers(folder: Path, keep: tuple[str, ...] = ()) -> None:
    left = sorted(p.name for p in folder.iterdir() if p.name not in keep)
    assert not [n for n in left if n.endswith((".onnx", ".tmp"))], left


def check_file(report: ExportReport, path: Path) -> None:
    assert Path(report.path) == path and path.is_file()
    assert report.file_bytes == path.stat().st_size
    onnx.checker.check_model(str(path))
    assert report.rel_diff <= 1e-4
    assert report.max_abs_diff <= max(1e-4, 1e-4 * report.output_scale)


# --------------------------------------------------------------------------- every spec


def _export_spec(spec_path: Path, tmp_path: Path, resolution: int | None) -> None:
    graph = graph_of(spec_path)
    groups = dict(wtc.base_widths(graph).groups)
    ck = tmp_path / "weights.pt"
    model = random_checkpoint(graph, groups, ck)  # trained at the spec's own resolution
    out = tmp_path / "model.onnx"
    rep = export_onnx(graph, None, out, checkpoint=ck, resolution=resolution)
    check_file(rep, out)
    s = graph.spec
    r = resolution or s.input.resolution
    assert rep.input_shape == [1, s.input.channels, r, r]
    assert rep.output_shape == [1, s.classes]
    assert rep.opset == 17 and rep.widths_source == "checkpoint" and rep.widths == groups
    assert rep.macs == wtc.count_macs(graph_of(spec_path, resolution), groups)
    assert rep.params == wtc.count_params(graph, groups)
    x = torch.randn(2, s.input.channels, r, r)
    assert_matches(out, model, x[:1])


@pytest.mark.parametrize("spec_path", SMALL, ids=sid)
def test_every_small_spec_exports_at_base_widths(spec_path, tmp_path):
    _export_spec(spec_path, tmp_path, None)


@pytest.mark.parametrize("spec_path", BIG, ids=sid)
def test_imagenet_specs_export_at_64px(spec_path, tmp_path):
    """Same graph as at 224 px (the groups and weights do not depend on the resolution)."""
    _export_spec(spec_path, tmp_path, 64)


@pytest.mark.slow
@pytest.mark.parametrize("spec_path", BIG, ids=sid)
def test_imagenet_specs_export_at_native_resolution(spec_path, tmp_path):
    _export_spec(spec_path, tmp_path, None)


# --------------------------------------------------------------------------- widths, batch, res


@pytest.mark.parametrize("family", list(TINY))
def test_nonuniform_widths_per_block_family(family, tmp_path):
    graph = graph_of(TINY[family])
    groups = nonuniform(graph)
    wfile = tmp_path / "widths.json"
    wtc.save_widths(_widths(graph, groups), wfile)
    ck = tmp_path / "w.pt"
    model = random_checkpoint(graph, groups, ck, bare=True)
    out = tmp_path / f"{family}.onnx"
    rep = export_onnx(graph, wfile, out, checkpoint=ck, dynamic_batch=True)
    check_file(rep, out)
    assert rep.widths == groups and rep.widths_source == str(wfile)
    assert rep.macs == wtc.count_macs(graph, groups) != wtc.count_macs(graph)
    assert rep.input_shape[0] == "batch" and rep.verified_batches == [1, 3]
    s = graph.spec
    for b in (1, 7):
        assert_matches(out, model, torch.randn(b, s.input.channels, s.input.resolution,
                                               s.input.resolution))


def _widths(graph, groups):
    from wtc.widths import widths_from_groups

    return widths_from_groups(graph, groups)


def test_static_batch_is_static_and_dynamic_batch_is_not(tmp_path):
    graph = graph_of(TINY["basic"])
    s = graph.spec
    x7 = torch.randn(7, s.input.channels, s.input.resolution, s.input.resolution)
    static = tmp_path / "static.onnx"
    rep = export_onnx(graph, None, static, batch_size=2)
    assert rep.input_shape[0] == 2 and rep.verified_batches == [2]
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        ort_outputs(static, x7)
    dyn = tmp_path / "dynamic.onnx"
    ck = tmp_path / "w.pt"
    model = random_checkpoint(graph, None, ck)
    export_onnx(graph, None, dyn, checkpoint=ck, dynamic_batch=True)
    assert_matches(dyn, model, x7)
    assert_matches(dyn, model, x7[:1])


def test_resolution_exports_the_same_weights_at_another_size(tmp_path):
    graph = graph_of(TINY["user_template"])
    groups = nonuniform(graph)
    ck = tmp_path / "w.pt"
    model = random_checkpoint(graph, groups, ck)
    out = tmp_path / "r24.onnx"
    rep = export_onnx(graph, groups, out, checkpoint=ck, resolution=24)
    c = graph.spec.input.channels
    assert rep.input_shape == [1, c, 24, 24] and rep.resolution == 24
    assert rep.macs == wtc.count_macs(graph_of(TINY["user_template"], 24), groups)
    assert rep.macs > wtc.count_macs(graph, groups)
    assert_matches(out, model, torch.randn(1, c, 24, 24))  # the 16-px model, fed 24 px


def test_dynamo_exporter(tmp_path):
    graph = graph_of(TINY["inverted_residual"])
    ck = tmp_path / "w.pt"
    model = random_checkpoint(graph, None, ck)
    out = tmp_path / "dynamo.onnx"
    rep = export_onnx(graph, None, out, checkpoint=ck, opset=18, exporter="dynamo",
                      dynamic_batch=True)
    check_file(rep, out)
    assert rep.exporter == "dynamo" and rep.opset == 18 and not rep.notes
    s = graph.spec
    assert_matches(out, model, torch.randn(5, s.input.channels, s.input.resolution,
                                           s.input.resolution))


def test_public_name_and_design_signature(tmp_path):
    graph = graph_of(TINY["plain"])
    w = wtc.base_widths(graph)
    rep = wtc.export_onnx(graph, w, str(tmp_path / "model.onnx"), checkpoint=None)
    assert isinstance(rep, ExportReport) and rep.widths == dict(w.groups)
    js = rep.to_json()
    assert js["macs"] == w.macs and js["opset"] == 17 and js["exporter"] == "torchscript"
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "model.onnx").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


# --------------------------------------------------------------------------- trained weights


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny ResNet trained a few epochs on the synthetic set at non-uniform widths."""
    from wtc.trainer import TrainConfig, train

    torch.manual_seed(0)
    graph = graph_of(TINY["basic"])
    groups = nonuniform(graph)
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data="synthetic", synthetic_size=256, synthetic_test_size=128, epochs=3,
                      batch_size=32, device="cpu", out=str(out), lr=0.05)
    res = train(graph, _widths(graph, groups), cfg)
    return graph, groups, out / "checkpoint.pt", cfg, res


def test_trained_checkpoint_predicts_like_torch(trained, tmp_path):
    from wtc.data import make_data

    graph, groups, ck, cfg, _ = trained
    out = tmp_path / "trained.onnx"
    rep = export_onnx(graph, None, out, checkpoint=ck, dynamic_batch=True)  # widths from ckpt
    check_file(rep, out)
    assert rep.widths == groups and rep.widths_source == "checkpoint"
    s = graph.spec
    data = make_data(cfg.data, channels=s.input.channels, resolution=s.input.resolution,
                     num_classes=s.classes)
    x, y = next(iter(data.test))  # held out: never trained on
    model = wtc.build_model(graph, groups, init=False)
    model.load_state_dict(read_checkpoint(ck)["model"])
    model.eval()
    with torch.no_grad():
        ref = model(x)
    got = ort_outputs(out, x)
    assert (got.argmax(1) == ref.argmax(1).numpy()).all()
    assert np.abs(got - ref.numpy()).max() / max(1.0, ref.abs().max().item()) <= 1e-4
    acc = (ref.argmax(1) == y).float().mean().item()
    assert acc > 1.5 / s.classes, acc  # it did learn: above chance on held-out images


def test_checkpoint_with_other_widths_names_layer_and_shapes(trained, tmp_path):
    graph, _, ck, _, _ = trained
    out = tmp_path / "bad.onnx"
    with pytest.raises(CheckpointError) as e:
        export_onnx(graph, wtc.base_widths(graph), out, checkpoint=ck)
    msg = str(e.value)
    assert str(ck) in msg and "shape" in msg and "widths" in msg
    # the first mismatching layer and both of its shapes
    model = wtc.build_model(graph)
    state = read_checkpoint(ck)["model"]
    key = next(k for k, v in state.items() if tuple(v.shape) != tuple(model.state_dict()[k].shape))
    assert f"'{key}'" in msg
    assert str(tuple(state[key].shape)) in msg
    assert str(tuple(model.state_dict()[key].shape)) in msg
    assert not out.exists()
    assert_no_leftovers(tmp_path)


# --------------------------------------------------------------------------- bad checkpoints


def test_checkpoint_errors_name_the_file(tmp_path):
    graph = graph_of(TINY["basic"])
    out = tmp_path / "m.onnx"
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=r"nope\.pt"):
        export_onnx(graph, None, out, checkpoint=missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a torch file")
    with pytest.raises(CheckpointError, match=r"corrupt\.pt.*corrupt"):
        export_onnx(graph, None, out, checkpoint=corrupt)
    truncated = tmp_path / "truncated.pt"
    good = tmp_path / "good.pt"
    random_checkpoint(graph, None, good)
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt"):
        export_onnx(graph, None, out, checkpoint=truncated)
    nothing = tmp_path / "nothing.pt"
    torch.save({"epoch": 3}, nothing)
    with pytest.raises(CheckpointError, match=r"nothing\.pt.*no model weights"):
        export_onnx(graph, None, out, checkpoint=nothing)
    assert not out.exists()
    assert_no_leftovers(tmp_path)


def test_missing_unexpected_keys_and_other_spec(tmp_path):
    graph = graph_of(TINY["basic"])
    out = tmp_path / "m.onnx"
    state = wtc.build_model(graph).state_dict()
    key = next(iter(state))
    partial = dict(state)
    del partial[key]
    partial["extra.weight"] = torch.zeros(1)
    p = tmp_path / "partial.pt"
    torch.save({"model": partial}, p)
    with pytest.raises(CheckpointError) as e:
        export_onnx(graph, None, out, checkpoint=p)
    assert key in str(e.value) and "extra.weight" in str(e.value)
    assert "missing" in str(e.value) and "unexpected" in str(e.value)
    other = tmp_path / "other.pt"
    torch.save({"model": state, "spec_hash": "0123456789abcdef"}, other)
    with pytest.raises(CheckpointError, match="different spec"):
        export_onnx(graph, None, out, checkpoint=other)
    # a bare state_dict of a DDP-wrapped model loads
    ddp = tmp_path / "ddp.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, ddp)
    assert read_checkpoint(ddp)["model"].keys() == state.keys()
    assert not out.exists()


def test_widths_for_another_spec(tmp_path):
    graph = graph_of(TINY["basic"])
    other = wtc.base_widths(graph_of(TINY["plain"]))
    with pytest.raises(WidthsError, match="plain_tiny"):
        export_onnx(graph, other, tmp_path / "m.onnx")
    wfile = tmp_path / "plain.json"
    wtc.save_widths(other, wfile)
    with pytest.raises(WidthsError):
        export_onnx(graph, wfile, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# --------------------------------------------------------------------------- atomic output


def test_failed_verification_leaves_no_file(tmp_path, monkeypatch):
    import wtc.export.onnx as mod

    graph = graph_of(TINY["plain"])
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    real = mod._session

    class Skewed:  # an onnxruntime whose outputs are off by 1
        def __init__(self, path):
            self.s = real(path)

        def run(self, names, feeds):
            return [o + 1.0 for o in self.s.run(names, feeds)]

    monkeypatch.setattr(mod, "_session", Skewed)
    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(graph, None, out)
    assert out.read_bytes() == b"old"  # untouched
    assert_no_leftovers(tmp_path, keep=("m.onnx",))

    monkeypatch.setattr(mod, "_session", real)

    def bad_check(*a, **k):
        raise onnx.checker.ValidationError("broken graph")

    monkeypatch.setattr(onnx.checker, "check_model", bad_check)
    with pytest.raises(ExportError, match=r"onnx\.checker.*broken graph"):
        export_onnx(graph, None, tmp_path / "new.onnx")
    assert not (tmp_path / "new.onnx").exists()
    assert_no_leftovers(tmp_path, keep=("m.onnx",))


def test_bad_options_and_paths(tmp_path):
    graph = graph_of(TINY["plain"])
    with pytest.raises(ConfigError, match="opset 5"):
        export_onnx(graph, None, tmp_path / "m.onnx", opset=5)
    with pytest.raises(ConfigError, match="exporter 'jit'"):
        export_onnx(graph, None, tmp_path / "m.onnx", exporter="jit")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not exist"):
        export_onnx(graph, None, tmp_path / "no" / "m.onnx")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        export_onnx(graph, None, tmp_path / "file" / "m.onnx")
    with pytest.raises(ConfigError, match="is a folder"):
        export_onnx(graph, None, tmp_path)
    assert_no_leftovers(tmp_path)
