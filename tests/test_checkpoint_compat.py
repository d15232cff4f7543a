"""A checkpoint written by wtc before the package restructure (issue 13) still loads.

tests/fixtures/ckpt_resnet_tiny/ was written by `wtc train specs/tiny/resnet_tiny.yaml --data
synthetic --epochs 1` (64 images, batch 32) at commit 69743ea; logits.json holds the eval
logits of the loaded model on a fixed input, and the state_dict keys, recorded then.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import wtc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "ckpt_resnet_tiny"


def fixed_input():
    return torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16).mul(0.37).sin()


def test_old_checkpoint_loads_with_identical_keys_and_logits():
    from wtc.trainer import load_checkpoint

    rec = json.loads((FIXTURE / "logits.json").read_text())
    graph = wtc.compile_spec(wtc.load_spec(ROOT / rec["spec"]))
    assert graph.spec_hash == rec["spec_hash"]
    widths = wtc.load_widths(FIXTURE / "widths.json", graph)
    model = wtc.build_model(graph, widths)
    assert sorted(model.state_dict()) == rec["keys"]
    ck = load_checkpoint(FIXTURE / "checkpoint.pt", model, spec_hash=graph.spec_hash,
                         widths=widths.groups)
    assert ck["epoch"] == 1
    model.eval()
    with torch.no_grad():
        logits = model(fixed_input())
    torch.testing.assert_close(logits, torch.tensor(rec["logits"]), rtol=1e-5, atol=1e-7)


def test_old_checkpoint_evaluates_through_the_public_path():
    from wtc.trainer import TrainConfig, evaluate_checkpoint

    cfg = TrainConfig(data="synthetic", synthetic_size=64, synthetic_test_size=32, device="cpu")
    res = evaluate_checkpoint(ROOT / "specs/tiny/resnet_tiny.yaml", FIXTURE / "checkpoint.pt",
                              cfg)
    assert res["images"] == 32
    # the same number by hand: the loaded model's argmax over the same test images
    from wtc.data import make_data
    from wtc.trainer import load_checkpoint

    graph = wtc.compile_spec(wtc.load_spec(ROOT / "specs/tiny/resnet_tiny.yaml"))
    model = wtc.build_model(graph, wtc.load_widths(FIXTURE / "widths.json", graph))
    load_checkpoint(FIXTURE / "checkpoint.pt", model, spec_hash=graph.spec_hash)
    model.eval()
    s = graph.spec
    data = make_data(cfg.data, channels=s.input.channels, resolution=s.input.resolution,
                     num_classes=s.classes)
    correct = seen = 0
    with torch.no_grad():
        for x, y in data.test:
            correct += int((model(x).argmax(1) == y).sum())
            seen += len(y)
    assert seen == 32 and res["top1"] == pytest.approx(correct / seen)
