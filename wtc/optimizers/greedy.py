"""AutoSlim's two phases on the supernet (torch side): sandwich training, then greedy slimming.

Both phases resume: supernet training through the trainer's checkpoints in `RUN/supernet`,
the greedy pass from `RUN/greedy.json`, rewritten atomically after every step (a resumed pass
continues from the last finished step and reaches the same widths).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from wtc.atomic import atomic_write_text
from wtc.graph import training_macs
from wtc.nn.slimmable import Supernet
from wtc.optimizers.base import Outcome, SearchContext
from wtc.optimizers.sandwich import HeldOut, SandwichHooks
from wtc.optimizers.training import fit_or_resume, runtime, train_config
from wtc.optimizers.widthgrid import WidthGrid
from wtc.trainer import dist_info, resolve_device, seed_everything
from wtc.trainer.progress import Progress
from wtc.widths import scale_to_macs

if TYPE_CHECKING:
    from wtc.data import DataBundle
    from wtc.optimizers.autoslim import AutoSlimSettings

GREEDY_FILE = "greedy.json"


def pixel_ratio(ctx: SearchContext, data: DataBundle) -> float:
    """MACs at the data's resolution over MACs at the spec's (convs scale with pixels)."""
    return (data.resolution / ctx.graph.spec.input.resolution) ** 2


def train_supernet(ctx: SearchContext, s: AutoSlimSettings, data: DataBundle, grid: WidthGrid,
                   hooks: SandwichHooks, net: Supernet | None = None
                   ) -> tuple[Supernet, int, list[dict]]:
    """Train (or reload a finished) supernet: (net, training MACs, per-epoch history)."""
    seed_everything(ctx.seed)
    net = net if net is not None else Supernet(ctx.graph, grid.max)
    if ctx.init is not None:
        ctx.init(net)
    cfg = train_config(ctx, s.epochs, lr=s.lr, momentum=s.momentum,
                       weight_decay=s.weight_decay, warmup_epochs=s.warmup_epochs,
                       schedule="cosine")
    run = ctx.run_dir / "supernet" if ctx.run_dir is not None else None
    meta = {"spec_hash": ctx.graph.spec_hash, "widths": grid.max}
    ratio = pixel_ratio(ctx, data)
    per_image = grid.mean_sandwich_macs(ctx.seed, s.samples) * ratio
    done = fit_or_resume(ctx, net, data, cfg, hooks, run=run, meta=meta,
                         forward_macs=round(per_image), evaluate_test=False)
    # the hooks count the MACs of the widths this rank trained; x3 for forward + backward,
    # x ranks (each rank trains its own shard of the batch)
    world = dist_info()[1]
    train_macs = round(training_macs(hooks.macs_seen, ratio) * world) if hooks.macs_seen else int(
        done.train_macs or 0)
    return net, train_macs, list(done.history)


def greedy_slim(net: Supernet, grid: WidthGrid, held: HeldOut, lowest_target: float,
                run_dir: Path | None = None, resume: bool = False, progress: Any = None,
                cost: Any = None) -> list[dict[str, Any]]:
    """From the max widths, shrink the group whose one-step shrink scores best on the held-out
    batches, until MACs (or `cost`, a cost model) are at or below `lowest_target`. Returns the
    trajectory (one point per step: widths, MACs, held-out top-1 and loss, the group shrunk,
    forwards spent)."""
    level = _level(grid, cost)
    path = run_dir / GREEDY_FILE if run_dir is not None else None
    order = list(grid.graph.free_groups)
    traj: list[dict[str, Any]] = []
    if resume and path is not None and path.is_file():
        traj = json.loads(path.read_text())["trajectory"]
    if not traj:
        start = dict(grid.max)
        traj = [{"step": 0, "widths": start, "macs": grid.macs(start), "shrunk": None,
                 "candidates": 1, "scored_macs": grid.macs(start), **held.score(net, start)}]
    while level(traj[-1]) > lowest_target:
        cur = traj[-1]["widths"]
        best: tuple[Any, ...] | None = None
        tried = spent = 0
        for i, g in enumerate(order):
            step = grid.narrower(g, cur[g])
            if step is None:
                continue
            cand = {**cur, g: step}
            sc = held.score(net, cand)
            tried += 1
            macs = grid.macs(cand)
            spent += macs
            key = (-sc["top1"], sc["loss"], macs, i)  # best accuracy; deterministic ties
            if best is None or key < best[0]:
                best = (key, g, cand, sc, macs)
        if best is None:  # every group at its minimum: the target cannot be reached
            break
        _, g, cand, sc, macs = best
        traj.append({"step": len(traj), "widths": cand, "macs": macs, "shrunk": g,
                     "candidates": tried, "scored_macs": spent, **sc})
        if path is not None:
            atomic_write_text(path, json.dumps({"trajectory": traj}) + "\n")
        if progress is not None:
            progress(traj[-1])
    if path is not None:
        atomic_write_text(path, json.dumps({"trajectory": traj}) + "\n")
    return traj


def _level(grid: WidthGrid, cost: Any) -> Any:
    """A trajectory point's cost: its MACs, or the cost model's number for its widths."""
    if cost is None:
        return lambda p: p["macs"]
    return lambda p: cost.cost(grid.graph, p["widths"])


def widths_for_target(grid: WidthGrid, traj: list[dict[str, Any]], target: float,
                      cost: Any = None) -> tuple[dict[str, int], int]:
    """The first trajectory point at or below `target`, re-matched to it by the shared uniform
    scaling (within 1%): (channels, trajectory step used). `cost`: the cost model the target
    is in (None: MACs)."""
    level = _level(grid, cost)
    point = next((p for p in traj if level(p) <= target), traj[-1])
    groups, _ = scale_to_macs(grid.graph, {g: float(v) for g, v in point["widths"].items()},
                              target, cost=cost)
    return groups, int(point["step"])


def autoslim_search(ctx: SearchContext, s: AutoSlimSettings, data: DataBundle,
                    targets: list[int]) -> Outcome:
    """Supernet training, greedy slimming to the lowest target, widths for every target."""
    grid = WidthGrid.from_settings(ctx.graph, s)
    device = resolve_device(ctx.device)
    held = HeldOut(data, s.bn_batches, s.eval_batches, device, runtime(ctx))
    hooks = SandwichHooks(grid, samples=s.samples, distill=s.distill, seed=ctx.seed)
    hooks.calibration = [x for x, _ in held.calib]
    net, train_macs, history = train_supernet(ctx, s, data, grid, hooks)
    net.to(device)
    with torch.no_grad(), Progress(ctx.progress, True) as bar:
        bar.start("greedy slimming")
        traj = greedy_slim(net, grid, held, min(targets), ctx.run_dir, ctx.resume,
                           progress=lambda p: bar.advance(
                               f"step {p['step']}: {p['macs']:,} MACs, held-out top-1 "
                               f"{p['top1']:.4f} (shrunk {p['shrunk']})"), cost=ctx.cost)
    ratio = pixel_ratio(ctx, data)
    evals = sum(p["candidates"] for p in traj)
    # each candidate: BN recalibration + scoring forwards at its MACs (forward only)
    greedy_macs = round(sum(p["scored_macs"] for p in traj) * held.forward_images() * ratio)
    per_target = {}
    for t in targets:
        groups, step = widths_for_target(grid, traj, t, ctx.cost)
        per_target[t] = {"groups": groups, "trajectory_step": step}
    main = per_target[ctx.target_macs]
    details = {
        "supernet": {"max": grid.max, "min": grid.min, "train_macs": train_macs},
        "greedy": {"steps": len(traj) - 1, "evaluations": evals, "forward_macs": greedy_macs,
                   "held_out_images": held.eval_images, "bn_images": held.calib_images},
        "trajectory": [{k: p[k] for k in ("step", "macs", "top1", "loss", "shrunk", "widths")}
                       for p in traj],
        "trajectory_step": main["trajectory_step"],
    }
    return Outcome(groups=main["groups"], train_macs=train_macs + greedy_macs, history=history,
                   details=details, per_target={t: v["groups"] for t, v in per_target.items()},
                   per_target_details={t: {"trajectory_step": v["trajectory_step"]}
                                       for t, v in per_target.items()})
