"""DMCP's training on the shared trainer (`wtc.trainer.fit` with `TrainHooks`), torch side.

Every step: the supernet's weights with the sandwich rule (max, min = the chains' prefixes,
and random widths) and in-place distillation, one optimizer step. From `arch_start` of the
steps on, after the weight step: the max-width network with the chains' marginals as channel
gates, on the same batch; loss = CE + macs_weight · MACs loss; gradients to α only (the weights
get none), α's SGD (momentum, Nesterov, no weight decay) with its learning rate going from
arch_lr to arch_lr_min by a cosine over the architecture phase.

α, its optimizer, the step counter, the cost counter and the record live in the hooks' state,
which the trainer checkpoints, so an interrupted search resumes bit-exactly.
"""

from __future__ import annotations

import contextlib
import math
from itertools import islice
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wtc.data import DataBundle, make_data
from wtc.errors import TargetError
from wtc.graph import StageGraph, compile_spec, count_macs
from wtc.nn import recalibrate_bn
from wtc.nn.slimmable import Supernet
from wtc.optimizers import training as tr
from wtc.optimizers.base import SearchContext
from wtc.optimizers.dmcp_chain import Chain, MarkovChannels, chain_layout, macs_loss
from wtc.spec.transform import scaled
from wtc.trainer import TrainHooks, dist_info, evaluate, resolve_device
from wtc.trainer.state import unwrap
from wtc.widths import make_divisible

TRACE_POINTS = 200  # at most this many (step, expected MACs) points are kept in the record


def load_search_data(ctx: SearchContext, s: Any) -> DataBundle:
    """The DataBundle, with `s.held_out` of the training images held out (raises DataError)."""
    spec = ctx.graph.spec
    cfg = ctx.data.model_copy(update={"val_split": s.held_out})
    return make_data(cfg, channels=spec.input.channels,
                     resolution=cfg.resolution or spec.input.resolution, num_classes=spec.classes)


def check_supernet(ctx: SearchContext, s: Any) -> None:
    """Refuse a spec the supernet cannot run (ConfigError naming the op; nothing allocated) and
    a target the chains cannot reach (TargetError: not between the MACs of the prefixes and of
    the supernet)."""
    with torch.device("meta"):
        net = Supernet(ctx.graph, multiplier=s.max_multiplier, init=False)
    layout = chain_layout(net.max_widths, s.prefix, s.num_blocks)
    low = count_macs(ctx.graph, {g: c.prefix for g, c in layout.items()})
    high = count_macs(ctx.graph, net.max_widths)
    if not low < ctx.target_macs < high:
        raise TargetError(
            f"DMCP searches between {low:,} MACs (every group at its kept prefix, prefix="
            f"{s.prefix:g}) and {high:,} MACs (the {s.max_multiplier:g}x supernet); the target "
            f"{ctx.target_macs:,} is outside: " + ("raise max_multiplier" if ctx.target_macs >= high
                                                     else "lower prefix"))


def soft_cross_entropy(logits: Tensor, target_probs: Tensor) -> Tensor:
    """Cross-entropy against soft targets (in-place distillation; KL up to a constant)."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(1).mean()


def chain_points(chain: Chain) -> list[int]:
    """The channel counts a chain can produce: the prefix plus the first k blocks, k = 0..K."""
    return [chain.channels(k) for k in range(len(chain.sizes) + 1)]


class DMCPHooks(TrainHooks):
    """The DMCP-specific parts of training, as trainer hooks."""

    def __init__(self, graph: StageGraph, chains: MarkovChannels, s: Any, *, target_macs: int,
                 seed: int, calibration: Any, cost_graph: StageGraph, world: int = 1) -> None:
        self.graph, self.chains, self.s = graph, chains, s
        self.target, self.seed = int(target_macs), int(seed)
        self.calibration = calibration  # the training loader: BN recalibration batches
        self.cost_graph, self.world = cost_graph, world
        self.max_widths = {g: c.width for g, c in chains.layout.items()}
        self.min_widths = {g: c.prefix for g, c in chains.layout.items()}
        self.points = {g: chain_points(c) for g, c in chains.layout.items()}
        self.arch_opt = torch.optim.SGD(chains.parameters(), lr=s.arch_lr,
                                        momentum=s.arch_momentum,
                                        nesterov=s.arch_momentum > 0, weight_decay=0.0)
        self.steps = 0  # weight steps taken (seeds the random widths of each step)
        self.train_macs = 0  # everything computed: sandwich, α steps, BN calibration, eval
        self.trace: list[list[float]] = []  # [step, expected MACs, task loss, MACs loss]
        self._batch: tuple[Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ widths

    def sandwich(self, step: int) -> list[dict[str, int]]:
        """Widths of one weight step: max, min (the prefixes), then random points of each
        group's chain, drawn from a generator seeded by (seed, step), so every rank draws the
        same and a resumed run draws what the uninterrupted one did."""
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + step) % (2**63))
        out = [self.max_widths, self.min_widths]
        for _ in range(self.s.samples - 2):
            out.append({g: p[int(torch.randint(len(p), (1,), generator=gen))]
                        for g, p in self.points.items()})
        return out

    def readout_widths(self) -> dict[str, int]:
        """The expected channels rounded to the divisor (at most the supernet's; the first
        stage of `dmcp.read_out`): what the held-out evaluation measures during training."""
        div = self.graph.spec.divisor
        return {g: min(self.max_widths[g], make_divisible(e, div))
                for g, e in self.chains.expected_channels().items()}

    def _macs(self, widths: dict[str, int]) -> int:
        return count_macs(self.cost_graph, widths)  # per image, at the data's resolution

    # ------------------------------------------------------------------ hooks

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [p for p in model.parameters() if p.requires_grad]  # α is not in the model

    def step(self, model: nn.Module, x: Tensor, y: Tensor, criterion: nn.Module,
             backward: Any) -> tuple[Tensor, Tensor]:
        net = unwrap(model)
        widths = self.sandwich(self.steps)
        ddp = model is not net
        loss: Tensor | None = None
        logits: Tensor | None = None
        soft: Tensor | None = None
        for i, w in enumerate(widths):
            net.set_widths(w)
            sync = contextlib.nullcontext() if not ddp or i == len(widths) - 1 else \
                model.no_sync()  # type: ignore[operator]
            with sync:
                out = model(x)
                if i == 0:
                    loss, logits = criterion(out, y), out
                    soft = out.detach().float().softmax(1)
                    backward(loss)
                elif self.s.distill:
                    backward(soft_cross_entropy(out.float(), soft))
                else:
                    backward(criterion(out, y))
            self.train_macs += 3 * self._macs(w) * len(y) * self.world
        net.set_widths(self.max_widths)
        self.steps += 1
        self._batch = (x, y)
        assert loss is not None and logits is not None
        return loss.detach(), logits

    def arch_start_step(self, total_steps: int) -> int:
        return int(self.s.arch_start * total_steps)

    def arch_lr(self, step: int, total_steps: int) -> float:
        start = self.arch_start_step(total_steps)
        t = (step - start) / max(1, total_steps - 1 - start)
        lo, hi = self.s.arch_lr_min, self.s.arch_lr
        return lo + (hi - lo) * 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))

    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        batch, self._batch = self._batch, None
        if batch is None or step < self.arch_start_step(total_steps):
            return
        net = unwrap(model)
        x, y = batch
        net.set_widths(self.max_widths)
        marg = self.chains.marginals()
        net.channel_gates = self.chains.gates(marg)
        try:
            logits = net(x)
        finally:
            net.channel_gates = None
        task = F.cross_entropy(logits.float(), y)
        expected = self.chains.expected_macs(marg)
        mloss = macs_loss(expected, self.target)
        loss = task + self.s.macs_weight * mloss
        params = list(self.chains.alpha)
        grads = torch.autograd.grad(loss, params)
        if self.world > 1:
            import torch.distributed as dist

            for gr in grads:
                dist.all_reduce(gr)
                gr.div_(self.world)
        for p, gr in zip(params, grads, strict=True):
            p.grad = gr
        lr = self.arch_lr(step, total_steps)
        for group in self.arch_opt.param_groups:
            group["lr"] = lr
        self.arch_opt.step()
        self.arch_opt.zero_grad(set_to_none=True)
        # the gated forward and the backward to the activations (no weight gradients)
        self.train_macs += 2 * self._macs(self.max_widths) * len(y) * self.world
        stride = max(1, (total_steps - self.arch_start_step(total_steps)) // TRACE_POINTS)
        if (step - self.arch_start_step(total_steps)) % stride == 0 or step == total_steps - 1:
            self.trace.append([step, round(float(expected.detach()), 1),
                               round(float(task.detach()), 5), round(float(mloss.detach()), 5)])

    def end_epoch(self, model: nn.Module, epoch: int) -> dict[str, Any]:
        with torch.no_grad():
            expected = float(self.chains.expected_macs())
        w = self.readout_widths()
        return {"expected_macs": round(expected, 1), "expected_vs_target": expected / self.target,
                "readout_macs": count_macs(self.graph, w),
                "arch_lr": self.arch_opt.param_groups[0]["lr"] if self.trace else None,
                "search_macs": self.train_macs}

    def evaluate(self, model: nn.Module, loader: Any, device: Any) -> dict[str, float]:
        """Held-out metrics of the current read-out (expected channels rounded) inside the
        supernet, BN recalibrated at those widths on `bn_batches` training batches."""
        net = unwrap(model)
        w = self.readout_widths()
        net.set_widths(w)
        seen = recalibrate_bn(net, islice(iter(self.calibration), self.s.bn_batches), device)
        res = evaluate(net, loader, device=device, amp=self.amp,
                       channels_last=self.channels_last)
        net.set_widths(self.max_widths)
        self.train_macs += self._macs(w) * (seen + int(res.get("n", 0)))
        return res

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.chains.state_dict(), "arch_opt": self.arch_opt.state_dict(),
                "steps": self.steps, "train_macs": self.train_macs, "trace": self.trace}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.chains.load_state_dict(state["alpha"])
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.steps, self.train_macs = int(state["steps"]), int(state["train_macs"])
        self.trace = [list(t) for t in state["trace"]]


# --------------------------------------------------------------------------- the run


def train_dmcp(ctx: SearchContext, s: Any, data: DataBundle) -> dict[str, Any]:
    """Train the supernet and the chains (resumable through `ctx.run_dir`); returns the record
    the optimizer reads out from: expected channels and marginals per group, expected MACs,
    history, cost."""
    graph, spec = ctx.graph, ctx.graph.spec
    tr.seed_everything(ctx.seed)
    net = Supernet(graph, multiplier=s.max_multiplier)
    if ctx.init is not None:
        ctx.init(net)
    layout = chain_layout(net.max_widths, s.prefix, s.num_blocks)
    chains = MarkovChannels(graph, layout)
    if s.alpha_init == "target":  # the middle of the MACs loss's dead zone [0.95T, T)
        chains.start_at(0.975 * ctx.target_macs)
    cost_graph = graph if data.resolution == spec.input.resolution else compile_spec(
        scaled(spec, resolution=data.resolution))
    epochs = ctx.epochs or s.epochs
    cfg = tr.train_config(ctx, epochs, lr=s.lr, momentum=s.momentum,
                          weight_decay=s.weight_decay, warmup_epochs=s.warmup_epochs,
                          schedule="cosine").model_copy(update={"val_split": s.held_out})
    chains.to(resolve_device(cfg.device))
    hooks = DMCPHooks(graph, chains, s, target_macs=ctx.target_macs, seed=ctx.seed,
                      calibration=data.train, cost_graph=cost_graph, world=dist_info()[1])
    meta = {"spec_hash": graph.spec_hash, "widths": dict(net.max_widths)}
    res = tr.fit_or_resume(ctx, net, data, cfg, hooks, run=ctx.run_dir, meta=meta,
                           forward_macs=count_macs(cost_graph, net.max_widths),
                           evaluate_test=False)
    with torch.no_grad():
        expected_macs = float(chains.expected_macs())
    return {"expected_channels": chains.expected_channels(), "marginals": chains.snapshot(),
            "expected_macs": expected_macs, "max_widths": dict(net.max_widths),
            "layout": {g: [c.prefix, list(c.sizes)] for g, c in layout.items()},
            "history": res.history, "trace": hooks.trace, "train_macs": hooks.train_macs,
            "held_out_top1": res.history[-1].get("val_top1") if res.history else None}
