"""`--init-from` on Fashion-MNIST: the 0.5x network started from a trained one (per width
group, the most important channels by L1 of the BN-folded weights, or by BN γ) against a
random init at the same widths, before and after one epoch of fine-tuning.

The model is tests/nn/test_init_from.py's small CNN (FMNIST in tests/helpers.py) on 14 px
images (2x2 average pooled), trained one epoch on 20,000 training images; both 0.5x networks
get their BN statistics re-estimated on 1,000 training images (as `wtc train --init-from`
does), then one more epoch on the same images. Test top-1 on 10,000 test images.
Run: .venv/bin/python benchmarks/bench_init_from.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wtc
from tests.helpers import FMNIST, sgd_epoch
from wtc.data.fashion_mnist import FASHION_MNIST_DIR, load_fashion_mnist
from wtc.graph import compile_spec
from wtc.nn.bn import recalibrate_bn
from wtc.nn.prune import init_from_trained
from wtc.spec.load import parse_spec
from wtc.widths import uniform_widths


def norm(t: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d((t.float().view(-1, 1, 28, 28) / 255 - 0.286) / 0.353, 2)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float(sum((model(a).argmax(1) == b).sum() for a, b in
                         zip(x.split(1000), y.split(1000), strict=True)) / len(y))


def main() -> None:
    train_x, train_y, test_x, test_y = load_fashion_mnist(str(FASHION_MNIST_DIR))[:4]
    xs, ys = norm(train_x[:20000]), train_y[:20000].long()
    tx, ty = norm(test_x), test_y.long()
    graph = compile_spec(parse_spec(FMNIST))
    torch.manual_seed(0)
    base = wtc.build_model(graph)
    sgd_epoch(base, xs, ys, 0.05)
    print(f"base widths, trained one epoch: top-1 {accuracy(base, tx, ty):.4f}")
    half = uniform_widths(graph, multiplier=0.5)
    print(f"0.5x widths ({half.macs:,} MACs of {wtc.count_macs(graph):,}):")
    print("| start | before fine-tuning | after one epoch |")
    print("|---|---:|---:|")
    for importance in ("l1", "bn", None):
        torch.manual_seed(1)
        net = wtc.build_model(graph, half)
        if importance:
            net.load_state_dict(init_from_trained(graph, half.groups, base.state_dict(),
                                                  importance))
        recalibrate_bn(net, list(xs[:1000].split(250)))
        before = accuracy(net, tx, ty)
        sgd_epoch(net, xs, ys, 0.05)
        name = f"--init-from, {importance}" if importance else "random init"
        print(f"| {name} | {before:.4f} | {accuracy(net, tx, ty):.4f} |", flush=True)


if __name__ == "__main__":
    main()
