"""DMCP's training on the shared trainer and the shared sandwich helper, torch side.

Every step: the supernet's weights with the sandwich rule (max, min = the chains' prefixes,
random widths on the divisor grid) and in-place distillation, one optimizer step
(`SandwichHooks`, shared with AutoSlim). From `arch_start` of the steps on, after the weight
step: the max-width network with the chains' marginals as channel gates, on the same batch;
loss = CE + macs_weight · MACs loss; gradients to α only (the weights get none); α's own SGD
(momentum, Nesterov, no weight decay) with its learning rate going from arch_lr to
arch_lr_min by a cosine over the architecture phase.

α, its optimizer, the cost counters and the record live in the hooks' state, which the trainer
checkpoints, so an interrupted search resumes bit-exactly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wtc.data import DataBundle
from wtc.errors import TargetError
from wtc.graph import training_macs
from wtc.nn import recalibrate_bn
from wtc.nn.slimmable import Supernet, check_slimmable
from wtc.optimizers.base import SearchContext
from wtc.optimizers.dmcp_chain import MarkovChannels, chain_layout, macs_loss
from wtc.optimizers.greedy import pixel_ratio
from wtc.optimizers.sandwich import HeldOut, SandwichHooks, unwrap
from wtc.optimizers.training import fit_or_resume, train_config
from wtc.optimizers.widthgrid import WidthGrid
from wtc.trainer import dist_info, evaluate, resolve_device, seed_everything
from wtc.widths import make_divisible, steps

if TYPE_CHECKING:
    from wtc.optimizers.dmcp import DMCPSettings

TRACE_POINTS = 200  # at most this many points of the architecture phase are recorded


def check_target(ctx: SearchContext, s: DMCPSettings) -> None:
    """Refuse a spec the supernet cannot run (ConfigError naming the op) and a target the
    chains cannot reach (TargetError: not between the MACs of the prefixes and of the
    supernet), before any training."""
    check_slimmable(ctx.graph)
    grid = s.width_grid(ctx.graph)
    if ctx.cost is not None:  # another cost model: the same range, in its unit
        low_c, high_c = ctx.cost.cost(ctx.graph, grid.min), ctx.cost.cost(ctx.graph, grid.max)
        if not low_c < ctx.target_macs < high_c:
            fmt = ctx.cost.format
            raise TargetError(
                f"DMCP searches between {fmt(low_c)} (every group at its kept prefix, prefix="
                f"{s.prefix:g}) and {fmt(high_c)} (the {s.max_multiplier:g}x supernet); the "
                f"target {fmt(ctx.target_macs)} is outside: "
                + ("raise max_multiplier" if ctx.target_macs >= high_c else "lower prefix"))
        return
    low, high = grid.macs(grid.min), grid.macs(grid.max)
    if not low < ctx.target_macs < high:
        raise TargetError(
            f"DMCP searches between {low:,} MACs (every group at its kept prefix, prefix="
            f"{s.prefix:g}) and {high:,} MACs (the {s.max_multiplier:g}x supernet); the target "
            f"{ctx.target_macs:,} is outside: " + ("raise max_multiplier"
                                                     if ctx.target_macs >= high
                                                     else "lower prefix"))


class DMCPHooks(SandwichHooks):
    """SandwichHooks (weights) plus DMCP's architecture step and read-out evaluation."""

    def __init__(self, grid: WidthGrid, chains: MarkovChannels, s: DMCPSettings, *,
                 target_macs: int, seed: int, world: int = 1) -> None:
        super().__init__(grid, samples=s.samples, distill=s.distill, seed=seed)
        self.chains, self.s, self.target, self.world = chains, s, int(target_macs), world
        self.steps = steps(grid.graph)  # the rounding step per group (divisor, group width)
        self.arch_opt = torch.optim.SGD(chains.parameters(), lr=s.arch_lr,
                                        momentum=s.arch_momentum,
                                        nesterov=s.arch_momentum > 0, weight_decay=0.0)
        self.arch_macs = 0  # forward MACs per image x images of the gated max network
        self.eval_macs = 0  # forward MACs per image x images of BN calibration and held-out
        self.trace: list[list[float]] = []  # [step, expected MACs, task loss, MACs loss]
        self._batch: tuple[Tensor, Tensor] | None = None

    def step(self, model: nn.Module, x: Tensor, y: Tensor, criterion: nn.Module,
             backward: Any) -> tuple[Tensor, Tensor]:
        self._batch = (x, y)  # the architecture step after the weight step uses this batch
        return super().step(model, x, y, criterion, backward)

    def arch_start_step(self, total_steps: int) -> int:
        return int(self.s.arch_start * total_steps)

    def arch_lr(self, step: int, total_steps: int) -> float:
        """arch_lr at the first architecture step, cosine to arch_lr_min at the last."""
        start = self.arch_start_step(total_steps)
        t = min(max((step - start) / max(1, total_steps - 1 - start), 0.0), 1.0)
        lo, hi = self.s.arch_lr_min, self.s.arch_lr
        return lo + (hi - lo) * 0.5 * (1.0 + math.cos(math.pi * t))

    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        super().after_step(model, step, total_steps)
        batch, self._batch = self._batch, None
        start = self.arch_start_step(total_steps)
        if batch is None or step < start:
            return
        expected, task, mloss = self.arch_step(unwrap(model), *batch, step, total_steps)
        stride = max(1, (total_steps - start) // TRACE_POINTS)
        if (step - start) % stride == 0 or step == total_steps - 1:
            self.trace.append([step, round(expected, 1), round(task, 5), round(mloss, 5)])

    def arch_step(self, net: Supernet, x: Tensor, y: Tensor, step: int, total_steps: int
                  ) -> tuple[float, float, float]:
        """One α update on the gated max-width network: (expected MACs, CE, MACs loss)."""
        net.set_widths(self.grid.max)
        marg = self.chains.marginals()
        net.channel_gates = self.chains.gates(marg)
        try:
            with self.runtime.autocast(x.device):  # after_step runs outside fit's autocast
                logits = net(x)
        finally:
            net.channel_gates = None
        task = F.cross_entropy(logits.float(), y)
        expected = self.chains.expected_macs(marg)
        mloss = macs_loss(expected, self.target)
        params = list(self.chains.alpha)
        grads = torch.autograd.grad(task + self.s.macs_weight * mloss, params)
        if self.world > 1:
            import torch.distributed as dist

            for gr in grads:
                dist.all_reduce(gr)
                gr.div_(self.world)
        for p, gr in zip(params, grads, strict=True):
            p.grad = gr
        for group in self.arch_opt.param_groups:
            group["lr"] = self.arch_lr(step, total_steps)
        self.arch_opt.step()
        self.arch_opt.zero_grad(set_to_none=True)
        # the gated forward plus the backward to the activations (no weight gradients): 2x
        self.arch_macs += 2 * self.grid.macs(self.grid.max) * len(y)
        return float(expected.detach()), float(task.detach()), float(mloss.detach())

    def readout_widths(self) -> dict[str, int]:
        """The expected channels rounded to the divisor (at most the supernet's; the first
        stage of `dmcp.read_out`): what the held-out evaluation measures during training."""
        step = self.steps
        return {g: min(self.grid.max[g], make_divisible(e, step[g]))
                for g, e in self.chains.expected_channels().items()}

    def end_epoch(self, model: nn.Module, epoch: int) -> dict[str, Any]:
        with torch.no_grad():
            expected = float(self.chains.expected_macs())
        return {"expected_macs": round(expected, 1), "expected_vs_target": expected / self.target,
                "readout_macs": self.grid.macs(self.readout_widths()),
                "arch_lr": self.arch_opt.param_groups[0]["lr"] if self.trace else None}

    def evaluate(self, model: nn.Module, loader: Any, device: Any) -> dict[str, float]:
        """Held-out metrics of the current read-out (expected channels rounded) inside the
        supernet, BN recalibrated at those widths on the fixed calibration batches."""
        net: Supernet = unwrap(model)
        w = self.readout_widths()
        net.set_widths(w)
        recalibrate_bn(net, self.calibration, device=device, dtype=self.runtime.dtype,
                       channels_last=self.runtime.channels_last)
        res = evaluate(net, loader, device=device, runtime=self.runtime)
        net.set_widths(self.grid.max)
        images = sum(len(x) for x in self.calibration) + int(res.get("n", 0))
        self.eval_macs += self.grid.macs(w) * images
        return res

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.chains.state_dict(),
                "arch_opt": self.arch_opt.state_dict(), "arch_macs": self.arch_macs,
                "eval_macs": self.eval_macs, "trace": self.trace}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.chains.load_state_dict(state["alpha"])
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.arch_macs, self.eval_macs = int(state["arch_macs"]), int(state["eval_macs"])
        self.trace = [list(t) for t in state["trace"]]

    def search_macs(self, ratio: float) -> int:
        """Everything computed, at the data's resolution: sandwich forward + backward (3x) and
        α steps on every rank, BN calibration and held-out forwards on one."""
        return round(((training_macs(self.macs_seen) + self.arch_macs) * self.world
                      + self.eval_macs) * ratio)


def loss_target(ctx: SearchContext) -> int:
    """The MACs loss's target: the MACs target, or, under another cost model, the linearised
    cost (in MACs-equivalents, `CostModel.terms`) of the uniform widths at its target."""
    if ctx.cost is None:
        return ctx.target_macs
    from wtc.widths import uniform_widths

    uni = uniform_widths(ctx.graph, target_macs=ctx.target_macs, cost=ctx.cost)
    return round(ctx.cost.linear_cost(ctx.graph, uni.groups))


def train_dmcp(ctx: SearchContext, s: DMCPSettings, data: DataBundle) -> dict[str, Any]:
    """Train the supernet and the chains (resumable through `ctx.run_dir`); returns the record
    the optimizer reads out from: expected channels and marginals per group, expected MACs,
    history, cost."""
    graph = ctx.graph
    grid = s.width_grid(graph)
    seed_everything(ctx.seed)
    net = Supernet(graph, grid.max)
    if ctx.init is not None:
        ctx.init(net)
    layout = chain_layout(grid.max, grid.min, s.num_blocks, steps(graph))
    terms = None if ctx.cost is None else ctx.cost.terms(graph)
    chains = MarkovChannels(graph, layout, terms=terms).to(resolve_device(ctx.device))
    target = loss_target(ctx)
    if s.alpha_init == "target":  # the middle of the MACs loss's dead zone [0.95T, T)
        chains.start_at(0.975 * target)
    hooks = DMCPHooks(grid, chains, s, target_macs=target, seed=ctx.seed,
                      world=dist_info()[1])
    held = HeldOut(data, s.bn_batches, 1, resolve_device(ctx.device))
    hooks.calibration = [x for x, _ in held.calib]
    cfg = train_config(ctx, s.epochs, lr=s.lr, momentum=s.momentum,
                       weight_decay=s.weight_decay, warmup_epochs=s.warmup_epochs,
                       schedule="cosine")
    ratio = pixel_ratio(ctx, data)
    run = ctx.run_dir / "supernet" if ctx.run_dir is not None else None
    res = fit_or_resume(ctx, net, data, cfg, hooks, run=run,
                        meta={"spec_hash": graph.spec_hash, "widths": grid.max},
                        forward_macs=round(grid.mean_sandwich_macs(ctx.seed, s.samples) * ratio),
                        evaluate_test=False)
    with torch.no_grad():
        expected_macs = float(chains.expected_macs())
    return {"expected_channels": chains.expected_channels(), "marginals": chains.snapshot(),
            "expected_macs": expected_macs, "max_widths": dict(grid.max),
            "layout": {g: [c.prefix, list(c.sizes)] for g, c in layout.items()},
            "history": res.history, "trace": hooks.trace, "train_macs": hooks.search_macs(ratio),
            "held_out_top1": res.history[-1].get("val_top1") if res.history else None}
