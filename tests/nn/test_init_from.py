"""`--init-from`: a narrower network that starts from trained (or imported) weights by keeping
each width group's most important channels. At base widths it is the trained network; at
0.5x, before any fine-tuning, it is far better than a random init."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

import wtc
from tests.helpers import FMNIST, sgd_epoch
from wtc.errors import CheckpointError, ConfigError
from wtc.graph import compile_spec
from wtc.importer import import_model
from wtc.nn.prune import init_from_trained
from wtc.spec.load import parse_spec
from wtc.widths import uniform_widths

pytestmark = pytest.mark.integration


def _scramble_bn(model: nn.Module) -> None:
    """Random BN statistics and affine terms, so a channel mix-up changes the logits."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm)):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                    m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                    m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "regnet_x_400mf",
                                  "densenet121", "convnext_tiny", "shufflenet_v2_x1_0"])
@pytest.mark.parametrize("importance", ["l1", "bn"])
def test_identity_at_base_widths(name, importance):
    torch.manual_seed(0)
    module = getattr(torchvision.models, name)(weights=None, num_classes=10).eval()
    _scramble_bn(module)
    x = torch.randn(2, 3, 32, 32)
    imported = import_model(module, x[:1], name=name)
    graph = compile_spec(imported.spec)
    base = {g: graph.groups[g].base for g in graph.free_groups}
    state = init_from_trained(graph, base, imported.state_dict, importance)
    model = wtc.build_model(graph, init=False).eval()
    model.load_state_dict(state)
    changed = sum(not torch.equal(state[k], imported.state_dict[k]) for k in state)
    assert changed > 0  # the channels were reordered ...
    with torch.no_grad():  # ... and the function is the same
        assert (model(x) - module(x)).abs().max() < 1e-4


def test_the_kept_channels_are_the_most_important():
    spec = parse_spec("""
name: two
input: {channels: 1, resolution: 8}
classes: 3
stem:
  - {block: conv_bn_act, width: 8}
stages:
  - {name: s1, block: conv_bn_act, width: 4}
head:
  - {block: classifier}
""")
    graph = compile_spec(spec)
    model = wtc.build_model(graph)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    conv = "stem.0.conv.weight"
    state[conv] = torch.ones_like(state[conv]) * torch.arange(1, 9).view(8, 1, 1, 1)
    w = {"stem.block0.conv": 3, "s1.block0.conv": 4}
    cut = init_from_trained(graph, w, state, "l1")
    assert cut[conv][:, 0, 0, 0].tolist() == [8, 7, 6]  # the three largest, by L1
    # the consumer's input channels follow: s1's conv reads channels 7, 6, 5 of the stem
    # (its own output channels are in its order of importance, all four kept)
    w1 = state["stages.0.blocks.0.conv.weight"]
    order = torch.argsort(w1.abs().sum((1, 2, 3)), descending=True, stable=True)
    assert torch.equal(cut["stages.0.blocks.0.conv.weight"], w1[order][:, [7, 6, 5]])
    assert torch.equal(cut["stem.0.bn.running_mean"], state["stem.0.bn.running_mean"][[7, 6, 5]])


def test_weights_of_another_shape_or_rule_are_refused():
    graph = compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    other = compile_spec(wtc.load_spec("specs/tiny/plain_tiny.yaml"))
    state = wtc.build_model(other).state_dict()
    with pytest.raises(CheckpointError, match="do not fit the spec at base widths"):
        init_from_trained(graph, uniform_widths(graph, multiplier=0.5).groups, state)
    own = wtc.build_model(graph).state_dict()
    with pytest.raises(ConfigError, match="unknown importance"):
        init_from_trained(graph, uniform_widths(graph, multiplier=0.5).groups, own, "taylor")


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_half_width_from_a_trained_model_beats_random_init_before_fine_tuning(tmp_path):
    """Fashion-MNIST at 14 px (2x2 average pooled, to stay fast), one epoch on 20,000 images;
    then 0.5x widths started from it, against a random init, both with their BN statistics
    re-estimated on 1,000 training images (no weight changes, as `wtc train --init-from`)."""
    from wtc.data.fashion_mnist import FASHION_MNIST_DIR, load_fashion_mnist
    from wtc.nn.bn import recalibrate_bn

    if not FASHION_MNIST_DIR.is_dir():  # pragma: no cover - installed on the test machines
        pytest.skip("Fashion-MNIST is not installed")
    train_x, train_y, test_x, test_y = load_fashion_mnist(str(FASHION_MNIST_DIR))[:4]

    def norm(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d((t.float().view(-1, 1, 28, 28) / 255 - 0.286) / 0.353, 2)

    xs, ys = norm(train_x[:20000]), train_y[:20000].long()
    tx, ty = norm(test_x[:2000]), test_y[:2000].long()
    graph = compile_spec(parse_spec(FMNIST))
    torch.manual_seed(0)
    model = wtc.build_model(graph)
    sgd_epoch(model, xs, ys, 0.05)
    trained = _accuracy(model, tx, ty)
    assert trained > 0.75
    half = uniform_widths(graph, multiplier=0.5)
    calibration = list(xs[:1000].split(250))
    scores = {}
    for importance in ("l1", "bn", None):
        net = wtc.build_model(graph, half)
        if importance:
            net.load_state_dict(init_from_trained(graph, half.groups, model.state_dict(),
                                                  importance))
        recalibrate_bn(net, calibration)
        scores[importance] = _accuracy(net, tx, ty)
    assert scores["l1"] > scores[None] + 0.2, (trained, scores)
    assert scores["bn"] > scores[None] + 0.2, (trained, scores)
    # the trainer's entry point reads the same weights from a checkpoint file
    from wtc.trainer.run import start_state

    path = tmp_path / "base.pt"
    torch.save({"model": model.state_dict(), "spec_hash": graph.spec_hash}, path)
    state = start_state(graph, half, path)
    assert all(torch.equal(state[k], v) for k, v in init_from_trained(
        graph, half.groups, model.state_dict()).items())
    torch.save({"model": model.state_dict(), "spec_hash": "0" * 16}, path)
    with pytest.raises(CheckpointError, match="another spec"):
        start_state(graph, half, path)


def test_cli_train_init_from(cli, tmp_path):
    graph = compile_spec(wtc.load_spec("specs/tiny/resnet_tiny.yaml"))
    base = tmp_path / "base.pt"
    torch.save({"model": wtc.build_model(graph).state_dict(), "spec_hash": graph.spec_hash},
               base)
    from wtc.widths import save_widths

    save_widths(uniform_widths(graph, multiplier=0.5), tmp_path / "half.json")
    cfg = tmp_path / "train.yaml"
    cfg.write_text("synthetic_size: 32\nsynthetic_test_size: 16\nepochs: 1\n")
    args = ["train", "specs/tiny/resnet_tiny.yaml", "--widths", tmp_path / "half.json",
            "--data", "synthetic", "--batch-size", "16", "--device", "cpu", "--config", cfg,
            "--json"]
    code, _, err = cli(*args, "--init-from", base, "--out", tmp_path / "run")
    assert code == 0, err
    code, _, err = cli(*args, "--init-from", tmp_path / "nope.pt", "--out", tmp_path / "r2")
    assert code == 2 and "does not exist" in err
    code, _, err = cli(*args, "--init-from", base, "--importance", "taylor",
                       "--out", tmp_path / "r3")
    assert code == 2 and "unknown importance" in err
