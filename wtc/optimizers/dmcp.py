"""DMCP (Guo et al., CVPR 2020, "Differentiable Markov Channel Pruning").

Per free width group g (not per layer: every member of a group shares one chain, so residual
streams and depthwise pairs stay consistent), the supernet's C_g channels are a kept prefix
plus K further channel blocks. Block k is kept with probability p_k = sigmoid(α_k) given block
k−1 is kept, so its marginal keep probability is P_k = p_1·…·p_k and the expected channel count
is E[c_g] = prefix + Σ_k size_k · P_k. The marginals scale the channels of their block at the
group's gate nodes of the supernet (`Supernet.channel_gates`), so the task loss reaches α
(dmcp_chain.py).

Training (dmcp_train.py): the supernet's weights every step with the shared sandwich rule and
in-place distillation (`optimizers.sandwich`); from `arch_start` of the steps on, one more
forward of the max-width network with the marginals as gates on the same batch, loss = task CE
+ macs_weight · MACs loss (log-L1 with the dead zone [0.95T, T), in MMACs), gradients to α
only, α's own SGD (momentum 0.9, Nesterov) with its learning rate cosine from arch_lr to
arch_lr_min.

Expected MACs use wtc's cost model: every conv/linear costs coef · Σ in · Σ out, and the
expectation of a product of two different groups (independent chains) is the product of their
expectations; a layer whose input and output are the same group (a 1×1 projection inside an
expansion-1 inverted residual) uses E[c²], which the chain gives in closed form. The MACs are
therefore exact expectations, not E[in]·E[out] approximations.

Read-out: E[c_g] rounded to the divisor (at most the supernet width); if that misses the target
by more than 1%, one multiplier on the expected channels is bisected with rounding inside
(`scale_to_macs`, the re-match every method shares).

wtc's own choices (README, "Search methods"): chains per width group; the prefix as a share of
the supernet width, rounded to the divisor; blocks made of whole divisor steps; exact
expected MACs; α starting with its expected MACs in the dead zone (`alpha_init="target"`; the
reference starts at 0); random sandwich widths on the divisor grid (the reference also draws
them from the chains); the weight optimizer of wtc's training recipe.

This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wtc.graph import StageGraph, count_macs, training_macs
from wtc.limits import MAX_EPOCHS
from wtc.optimizers.base import Optimizer, Outcome, SearchContext, register_optimizer
from wtc.optimizers.widthgrid import WidthGrid
from wtc.widths import make_divisible, scale_to_macs, steps

TOLERANCE = 0.01  # the read-out meets the target within this share


class DMCPSettings(BaseModel):
    """DMCP hyper-parameters. Defaults follow the paper's released configs where wtc has the same
    knob; the weight optimizer follows wtc's training recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_multiplier: float = Field(1.5, gt=0.0, le=4.0, description="supernet width x base")
    prefix: float = Field(0.1, gt=0.0, lt=1.0,
                          description="always-kept prefix, share of the supernet width")
    blocks: int | None = Field(
        None, ge=1, description="channel blocks after the prefix per group (default "
        "round(10·max_multiplier) − 1: 9 at 1.0x, 14 at 1.5x)")
    alpha_init: Literal["target", "zero"] = Field(
        "target", description="α at the start: 'target' = one value for all whose expected "
        "MACs sit in the dead zone (wtc); 'zero' = every transition 0.5 (the reference)")
    epochs: int = Field(8, ge=1, le=MAX_EPOCHS,
                        description="supernet training epochs (weights + α)")
    lr: float = Field(0.1, gt=0.0, description="weight learning rate (cosine to 0)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0, description="on conv/linear weights only")
    warmup_epochs: float = Field(0.0, ge=0.0, le=MAX_EPOCHS)
    arch_lr: float = Field(0.5, gt=0.0, description="α learning rate at the start of its phase")
    arch_lr_min: float = Field(0.1, ge=0.0, description="α learning rate at the end (cosine)")
    arch_momentum: float = Field(0.9, ge=0.0, lt=1.0, description="α SGD momentum (Nesterov)")
    arch_start: float = Field(0.5, ge=0.0, lt=1.0,
                              description="share of the training steps before α is updated")
    macs_weight: float = Field(0.1, ge=0.0, description="weight of the MACs loss in α's loss")
    samples: int = Field(4, ge=2, description="widths per weight step: max, min and random")
    distill: bool = Field(True, description="in-place distillation from the max width")
    held_out: float = Field(0.1, gt=0.0, lt=1.0,
                            description="share of the training images held out for evaluation "
                            "(the data's val_split wins when given)")
    bn_batches: int = Field(5, ge=1, description="training batches to recalibrate BN on")

    @model_validator(mode="after")
    def _arch_lr_order(self) -> DMCPSettings:
        if self.arch_lr_min > self.arch_lr:
            raise ValueError(f"arch_lr_min {self.arch_lr_min} is above arch_lr {self.arch_lr}")
        return self

    def width_grid(self, graph: StageGraph) -> WidthGrid:
        """The supernet's widths: max = max_multiplier x base, min (the chains' prefixes) =
        prefix x the supernet width, both rounded to the group's step (the divisor)."""
        return WidthGrid.build(graph, self.max_multiplier, self.prefix * self.max_multiplier,
                               steps=2)

    @property
    def num_blocks(self) -> int:
        if self.blocks is not None:
            return self.blocks
        return max(1, round(10 * self.max_multiplier) - 1)


# --------------------------------------------------------------------------- read-out


def read_out(graph: StageGraph, expected: Mapping[str, float], target_macs: float,
             max_widths: Mapping[str, int], cost: Any = None
             ) -> tuple[dict[str, int], dict[str, Any]]:
    """Widths from the expected channels: rounded to the divisor (at most the supernet width);
    if that misses the target by more than 1%, re-matched by one multiplier on the expected
    channels (`scale_to_macs`). Returns (widths, what was done). `cost`: the cost model the
    target is in (None: MACs)."""
    step = steps(graph)  # the divisor (a grouped conv's group width)
    rounded = {g: min(int(max_widths[g]), make_divisible(float(expected[g]), step[g]))
               for g in graph.free_groups}
    macs = count_macs(graph, rounded)
    info: dict[str, Any] = {"expected_channels": {g: round(float(expected[g]), 3)
                                                  for g in graph.free_groups},
                            "rounded": rounded, "rounded_macs": macs}
    achieved = macs if cost is None else cost.cost(graph, rounded)
    if abs(achieved - target_macs) <= TOLERANCE * target_macs:
        info["rematch_alpha"] = 1.0
        return rounded, info
    groups, alpha = scale_to_macs(graph, {g: max(float(expected[g]), 1e-6)
                                          for g in graph.free_groups}, target_macs, cost=cost)
    info["rematch_alpha"] = alpha
    return groups, info


# --------------------------------------------------------------------------- the optimizer


@register_optimizer
class DMCP(Optimizer):
    name = "dmcp"
    Settings = DMCPSettings
    needs_data = True
    summary = ("Markov chain over channel blocks per width group on a slimmable supernet, "
               "expected-MACs loss; widths from the expected channels")

    @staticmethod
    def held_out_top1(details: Mapping[str, Any]) -> float | None:
        """The supernet's held-out top-1 at the end of the search (`dmcp.held_out_top1`)."""
        return (details.get("dmcp") or {}).get("held_out_top1")

    @staticmethod
    def estimate_train_macs(graph: StageGraph, s: DMCPSettings, *, images: float,
                            target_macs: int, val_images: float = 0.0) -> int:
        """Projected cost (dry runs): per trained image and epoch, the sandwich widths' forward
        + backward (3x) and, in the architecture phase, the gated max network's forward +
        backward to the activations (2x); per epoch, BN recalibration (batches of 128) and the
        held-out evaluation at about the target."""
        grid = s.width_grid(graph)
        trained = images * (1.0 - s.held_out)
        per_image = (training_macs(grid.mean_sandwich_macs(0, s.samples, draws=16))
                     + 2 * grid.macs(grid.max) * (1.0 - s.arch_start))
        monitor = (s.bn_batches * 128 + images * s.held_out) * target_macs
        return int(s.epochs * (trained * per_image + monitor))

    def check(self, ctx: SearchContext, settings: BaseModel) -> None:
        """Refuse a spec the supernet cannot run or a target outside the chains' range (the
        data is read by `run`, first: failures come before any training)."""
        from wtc.optimizers.dmcp_train import check_target

        assert isinstance(settings, DMCPSettings)
        check_target(ctx, settings)

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:
        from wtc.optimizers.dmcp_train import train_dmcp
        from wtc.optimizers.sandwich import held_out_data

        assert isinstance(settings, DMCPSettings)
        data = held_out_data(ctx, settings.held_out)
        rec = train_dmcp(ctx, settings, data)
        groups, info = read_out(ctx.graph, rec["expected_channels"], ctx.target_macs,
                                rec["max_widths"], cost=ctx.cost)
        details = {"expected_macs": round(rec["expected_macs"], 1),
                   "expected_macs_per_epoch": [r.get("expected_macs") for r in rec["history"]],
                   "marginals": rec["marginals"], **info,
                   "supernet_widths": rec["max_widths"], "held_out_top1": rec["held_out_top1"]}
        if ctx.run_dir is not None:
            from wtc.optimizers.dmcp_train import loss_target

            # the expected-cost trace is in MACs(-equivalents): plotted against the loss's target
            write_record(ctx.run_dir, ctx.graph, loss_target(ctx), rec)
        return Outcome(groups=groups, train_macs=rec["train_macs"], history=rec["history"],
                       details={"dmcp": details})


def write_record(run_dir: Path, graph: StageGraph, target_macs: int,
                 rec: Mapping[str, Any]) -> None:
    """Into the search's run directory: `dmcp.json` (marginals, layout, the expected-MACs trace
    of the architecture phase: [step, expected MACs, task loss, MACs loss]) and
    `marginals.png` (the marginals per group, and the trace against the target)."""
    import json

    from wtc.atomic import atomic_write_text

    keep = ("marginals", "layout", "trace", "expected_channels", "expected_macs", "max_widths")
    atomic_write_text(run_dir / "dmcp.json", json.dumps(
        {"target_macs": target_macs, **{k: rec[k] for k in keep}}, indent=1) + "\n")
    plot_marginals(graph, rec["marginals"], rec["layout"], rec["trace"], target_macs,
                   run_dir / "marginals.png")


def plot_marginals(graph: StageGraph, marginals: Mapping[str, list[float]],
                   layout: Mapping[str, Any], trace: list[list[float]], target_macs: int,
                   path: Path) -> Path:
    """Left: one line per group, the marginal keep probability of each supernet channel (1 on
    the prefix, P_k on block k) over its position as a share of the width. Right: expected
    MACs / target over the architecture steps, with the MACs loss's dead zone. PNG, atomic."""
    import matplotlib

    from wtc.atomic import atomic_write
    from wtc.plot import figure

    groups = [g for g in graph.free_groups if g in layout]
    fig, (ax, bx) = figure(1, 2, figsize=(11.0, 4.2), width_ratios=(3, 2))
    cmap = matplotlib.colormaps["viridis"]
    for i, g in enumerate(groups):
        prefix, sizes = layout[g]
        width = prefix + sum(sizes)
        ys = [1.0] * prefix + [p for p, n in zip(marginals.get(g, []), sizes, strict=False)
                               for _ in range(n)]
        xs = [(c + 0.5) / width for c in range(len(ys))]
        ax.step(xs, ys, where="mid", color=cmap(i / max(1, len(groups) - 1)), label=g,
                linewidth=1.2)
    ax.set_xlabel("channel position / supernet width")
    ax.set_ylabel("marginal keep probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{graph.spec.name}: DMCP marginals per width group", fontsize=10)
    ax.legend(fontsize=6, ncol=2, loc="upper right")
    bx.axhspan(0.95, 1.0, color="tab:green", alpha=0.2, label="dead zone [0.95T, T)")
    if trace:
        bx.plot([t[0] for t in trace], [t[1] / target_macs for t in trace], color="tab:blue",
                label="expected MACs / T")
    bx.set_xlabel("training step (architecture phase)")
    bx.set_ylabel("expected MACs / target")
    bx.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    return path
