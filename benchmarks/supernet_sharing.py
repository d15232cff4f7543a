"""How well a slimmable supernet's widths share its weights after a short sandwich training
(issue 18's ShuffleNetV2 follow-up): held-out top-1 at max, min, uniform 0.5x, branches-only
0.5x and AutoSlim's committed ShuffleNet widths, with and without BN recalibration.

One thread, one seed; trains on `n` training images (one pass, batches of 128) and scores on
2,000 other training images (never the test set). Options as key=value:
  spec=specs/shufflenetv2_fmnist.yaml  n=12000  lr=0.1  min=0.1 (min_multiplier)
  samples=4 (widths per step)  distill=1  fixres=0 (1: streams `*.res` stay at max)
  maxonly=0 (1: train the max width only)  warmup=0 (linear warm-up steps)  seed=0
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/supernet_sharing.py n=12000 lr=0.02
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wtc
from wtc.data.fashion_mnist import load_fashion_mnist
from wtc.nn.bn import recalibrate_bn
from wtc.nn.slimmable import Supernet
from wtc.optimizers.sandwich import SandwichHooks
from wtc.optimizers.widthgrid import WidthGrid

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "examples/results/screen_shufflenetv2_0.1x/ledger.jsonl"


def autoslim_widths() -> dict[str, int] | None:
    """The widths the committed ShuffleNet screen's AutoSlim search returned."""
    for line in LEDGER.read_text().splitlines():
        if '"autoslim' in line and "trajectory" in line:
            return json.loads(line)["outputs"]["groups"]
    return None


def main(args: dict[str, str]) -> None:  # long: one straight measurement script
    spec = args.get("spec", "specs/shufflenetv2_fmnist.yaml")
    n, lr, seed = int(args.get("n", 12000)), float(args.get("lr", 0.1)), int(args.get("seed", 0))
    mn = float(args.get("min", 0.1))
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    tx, ty, _, _ = load_fashion_mnist()
    perm = torch.randperm(len(ty), generator=torch.Generator().manual_seed(0))
    tr, va = perm[:n], perm[-2000:]

    def norm(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - 0.286) / 0.353

    xtr, ytr, xva, yva = norm(tx[tr]), ty[tr], norm(tx[va]), ty[va]
    g = wtc.compile_spec(wtc.load_spec(spec))
    grid = WidthGrid.build(g, 1.0, mn, 10)
    res = [k for k in g.free_groups if k.endswith(".res")]
    if args.get("fixres") == "1":
        grid = WidthGrid(g, grid.max, {**grid.min, **{k: grid.max[k] for k in res}}, grid.steps)
    net = Supernet(g, grid.max)
    only_max = args.get("maxonly") == "1"
    hooks = SandwichHooks(grid, samples=int(args.get("samples", 4)), seed=seed,
                          distill=args.get("distill", "1") == "1",
                          widths=(lambda _: [dict(grid.max)]) if only_max else None)
    decay = [p for p in net.parameters() if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                           {"params": rest, "weight_decay": 0.0}], lr=lr, momentum=0.9,
                          nesterov=True)
    steps, warm = n // 128, max(1, int(args.get("warmup", 0)))
    losses, t0 = [], time.time()
    net.train()
    for s in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * s / steps)) * min(1.0, (s + 1) / warm)
        idx = torch.randperm(n)[:128]
        opt.zero_grad(set_to_none=True)
        loss, _ = hooks.step(net, xtr[idx], ytr[idx], torch.nn.CrossEntropyLoss(),
                             lambda v: v.backward())
        opt.step()
        hooks.after_step(net, s, steps)
        losses.append(float(loss))
    train_s = time.time() - t0
    calib = [xtr[i * 128:(i + 1) * 128] for i in range(8)]
    state = {k: v.clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def score(w: dict[str, int], recal: int) -> float:
        net.load_state_dict(state)
        net.set_widths(w)
        if recal:
            recalibrate_bn(net, calib[:recal])
        net.eval()
        top1 = float((net(xva).argmax(1) == yva).float().mean()) * 100
        net.train()
        return round(top1, 1)

    half = WidthGrid.build(g, 1.0, 0.5, 10).min
    cands = {"max": grid.max, "min": WidthGrid.build(g, 1.0, mn, 10).min, "uniform0.5": half,
             "res0.5_rest_max": {**grid.max, **{k: half[k] for k in res}},
             "branches0.5_res_max": {**half, **{k: grid.max[k] for k in res}}}
    if "shufflenet" in spec and (chosen := autoslim_widths()):
        cands["autoslim_chosen"] = chosen
    out = {"args": args, "steps": steps, "train_s": round(train_s),
           "loss_first10": round(sum(losses[:10]) / len(losses[:10]), 2),
           "loss_last10": round(sum(losses[-10:]) / len(losses[-10:]), 2)}
    for name, w in cands.items():
        out[name] = {"no_recal": score(w, 0), "recal2": score(w, 2), "recal8": score(w, 8)}
    print(json.dumps(out))


if __name__ == "__main__":
    main(dict(a.split("=", 1) for a in sys.argv[1:]))
