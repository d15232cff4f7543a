"""What several test modules share (imported as `from tests.helpers import ...`; fixtures are
in conftest.py): paths of the specs, a tiny network and training config, the tiny experiment
plan, and what every hostile-input test asserts (exit 2, one located message on stderr, no
traceback, nothing written; no time bounds here: those are benchmarks).

torch and the experiment package are imported inside the helpers that need them, so a test
module of the torch-free layers can import this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.yaml"))
TINY = sorted((ROOT / "specs" / "tiny").glob("*.yaml"))
RESNET_TINY = str(ROOT / "specs" / "tiny" / "resnet_tiny.yaml")


def spec_id(p: Path) -> str:
    return str(p.relative_to(ROOT / "specs"))


# a small Fashion-MNIST CNN at 14 px (tests/nn/test_init_from.py, benchmarks/bench_init_from.py)
FMNIST = """
name: fmnist_small
input: {channels: 1, resolution: 14}
classes: 10
stem:
  - {block: conv_bn_act, width: 32}
stages:
  - {name: s1, block: conv_bn_act, width: 64, stride: 2}
  - {name: s2, block: conv_bn_act, width: 64, stride: 2}
head:
  - {block: classifier}
"""


# --- training: a small torch network and config on synthetic data

def tiny_net(channels: int = 3, classes: int = 10, width: int = 8, seed: int = 0) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * width), nn.ReLU(), nn.Dropout(0.1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, classes))


def small_cfg(**kw: Any) -> Any:
    from wtc.trainer import TrainConfig

    base = {"data": "synthetic", "epochs": 2, "batch_size": 32, "lr": 0.1,
            "synthetic_size": 512, "synthetic_test_size": 256, "synthetic_resolution": 12,
            "synthetic_channels": 3, "synthetic_classes": 10, "device": "cpu", "threads": 1}
    base.update(kw)
    return TrainConfig(**base)


# --- experiments: the tiny plan on synthetic data

PLAN = {
    "name": "tiny",
    "target": {"spec": RESNET_TINY, "macs": "0.5x"},
    "data": {"data": "synthetic", "synthetic_size": 160, "synthetic_test_size": 48,
             "batch_size": 32},
    "methods": {"morphnet": {"epochs": 1}},
    "proxies": {"half": {"width": 0.5}, "shallow": {"depths": [1, 1], "stacking": ["last"]}},
    "search": {"val_split": 0.2},
    "train": {"epochs": 1, "lr": 0.05},
    "seeds": [0, 1],
}
# the tiny plan cut to one method, no proxy and one seed: the smallest plan with every unit kind
SMALL_PLAN = {**{k: v for k, v in PLAN.items() if k != "proxies"},
              "train": {"epochs": 1}, "seeds": [0]}


def write_plan(path: Path, **changes: Any) -> Path:
    """The tiny plan as YAML at `path`; `section=value` replaces a section, `section__key=value`
    one key of it."""
    import yaml

    plan = json.loads(json.dumps(PLAN))
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            plan[section][sub] = value
        else:
            plan[section] = value
    path.write_text(yaml.safe_dump(plan))
    return path


def results(out: Path) -> dict[str, tuple]:
    """What must not depend on how a run was interrupted: per unit, inputs and outputs."""
    from wtc.experiment import Ledger

    return {r["unit"]: (r["input_hash"], r["output_hash"], json.dumps(r["outputs"],
                                                                       sort_keys=True))
            for r in Ledger(out).units()}


# --- hostile input

def refused(cli, *args, expect=(), code: int = 2) -> str:
    """Run the CLI; assert the exit code, no traceback and one message holding `expect`."""
    rc, stdout, stderr = cli(*args)
    message = " ".join(stderr.split())
    assert rc == code, f"exit {rc}: {stdout}{stderr}"
    assert "Traceback" not in stdout + stderr
    assert "internal error" not in message, message
    assert message.count("error:") == 1, message  # warnings may come first
    message = message[message.index("error:"):]
    for part in expect:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def tree(*folders: Path) -> dict[str, bytes | None]:
    """Every file under `folders` with its bytes (None for a folder or a link), to assert that
    a refused command wrote nothing."""
    found: dict[str, bytes | None] = {}
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            found[str(p)] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return found


def sgd_epoch(model: Any, xs: Any, ys: Any, lr: float, batch: int = 50) -> None:
    """One epoch of SGD (momentum 0.9, Nesterov) over in-memory tensors, in order: the short
    training the init-from test and benchmark both give a network (torch imported here, so
    helpers stays importable without it)."""
    import torch
    from torch.nn import functional as F

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    model.train()
    for i in range(0, len(xs), batch):
        loss = F.cross_entropy(model(xs[i:i + batch]), ys[i:i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()


def without_fashion_mnist(tmp_path: Path, monkeypatch: Any) -> Path:
    """No installed Fashion-MNIST and no network (torchvision's download fails): returns a
    data root that exists but holds no data."""
    import torchvision.datasets

    import wtc.data.fashion_mnist as wd

    def no_network(*a: Any, **k: Any) -> None:
        raise RuntimeError("no network")

    monkeypatch.setattr(wd, "FASHION_MNIST_DIR", tmp_path / "absent")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", no_network)
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


TEARDOWN_ABORT = "terminate called without an active exception"


def torchrun(script: Path, *args: str | Path, nproc: int = 2) -> subprocess.CompletedProcess:
    """Run `script` on `nproc` CPU ranks under torchrun (one thread each, this checkout on the
    path) and return the finished process; the caller asserts on it.

    One relaunch, only when a rank died of a C++ abort at gloo teardown (TEARDOWN_ABORT on
    stderr): most likely a race in torch's gloo teardown (pytorch#190489 shows the message), seen
    once in many CI runs and not reproduced in 50 launches; `fit` waits for every rank before
    it tears the group down. Any other failure, or the abort twice, reaches the
    caller's assertion."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
           "--standalone", str(script), *map(str, args)]
    for _ in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                              cwd=ROOT)
        if proc.returncode == 0 or TEARDOWN_ABORT not in proc.stderr:
            break
    return proc
