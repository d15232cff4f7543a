"""AutoSlim (Yu & Huang 2019) on the slimmable supernet.

1. Train a supernet at `max_multiplier` x base widths with the sandwich rule (max, min and
   `samples - 2` random widths per step, drawn per group on the divisor grid) and in-place
   distillation (every width but the max learns from the max width's detached soft output);
   losses of one batch are summed before one optimizer step.
2. Greedy slimming on a held-out split of the *training* set: from the max widths, try
   shrinking each group by one step (a tenth of its range by default), score every candidate
   on fixed held-out batches after BN recalibration, keep the best, until the smallest MACs
   target is met. The trajectory is saved; each target takes the first point at or below it,
   re-matched to the target with the shared uniform scaling (within 1%).

wtc's own choices where the reference code is wrong or silent: 4 forwards per step (the
released config gives 2, a typo per the maintainer), distillation on (the released switch is
never read), a greedy search defined here (the released one cannot run), per-candidate BN
recalibration on fixed training batches, ties broken by held-out loss, then MACs, then group
order. No torch at import; the torch side is in `greedy.py` and `sandwich.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wtc.errors import ConfigError
from wtc.graph import StageGraph, training_macs
from wtc.limits import MAX_EPOCHS
from wtc.optimizers.base import Optimizer, Outcome, SearchContext, register_optimizer

if TYPE_CHECKING:
    from wtc.optimizers.widthgrid import WidthGrid


class AutoSlimSettings(BaseModel):
    """AutoSlim hyper-parameters: supernet training, then greedy slimming."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_multiplier: float = Field(1.5, gt=0.0, le=4.0, description="supernet width x base")
    min_multiplier: float = Field(0.15, gt=0.0, description="smallest width x base")
    samples: int = Field(4, ge=2, le=16, description="widths per step: max, min, samples-2 random")
    distill: bool = Field(True, description="in-place distillation from the max width")
    steps: int = Field(10, ge=2, le=100, description="width steps per group (greedy grid)")
    held_out: float = Field(0.2, gt=0.0, lt=1.0, description="share of train held out "
                            "(the data's val_split wins when given)")
    eval_batches: int = Field(2, ge=1, description="held-out batches scoring a candidate")
    bn_batches: int = Field(2, ge=1, description="training batches recalibrating BN")
    epochs: int = Field(5, ge=1, le=MAX_EPOCHS, description="supernet training epochs")
    lr: float = Field(0.1, gt=0.0, description="peak learning rate (cosine decay)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0, description="on conv/linear weights only")
    warmup_epochs: float = Field(0.0, ge=0.0, le=MAX_EPOCHS)

    @model_validator(mode="after")
    def _range(self) -> AutoSlimSettings:
        if self.min_multiplier >= self.max_multiplier:
            raise ValueError(f"min_multiplier ({self.min_multiplier}) must be below "
                             f"max_multiplier ({self.max_multiplier})")
        return self


@register_optimizer
class AutoSlim(Optimizer):
    name = "autoslim"
    Settings = AutoSlimSettings
    needs_data = True
    multi_target = True
    shared_run = "one supernet, slimmed down to the lowest budget"
    summary = "slimmable supernet (sandwich rule, in-place distillation), then greedy slimming"

    def check(self, ctx: SearchContext, settings: BaseModel) -> None:
        """Build nothing yet, but check that the supernet can run this spec and reach the
        targets (the data is read by `run`, first: failures come before any training)."""
        assert isinstance(settings, AutoSlimSettings)
        from wtc.nn.slimmable import check_slimmable
        from wtc.optimizers.widthgrid import WidthGrid

        check_slimmable(ctx.graph)
        grid = WidthGrid.from_settings(ctx.graph, settings)
        lowest = min(ctx.targets or (ctx.target_macs,))
        if ctx.cost is not None and ctx.cost.cost(ctx.graph, grid.min) > lowest:
            raise ConfigError(
                f"the supernet's smallest widths ({settings.min_multiplier}x base, "
                f"{ctx.cost.format(ctx.cost.cost(ctx.graph, grid.min))}) are above the target "
                f"{ctx.cost.format(lowest)}: lower min_multiplier")
        if ctx.cost is None and grid.macs(grid.min) > lowest:
            raise ConfigError(
                f"the supernet's smallest widths ({settings.min_multiplier}x base, "
                f"{grid.macs(grid.min):,} MACs) are above the target {lowest:,}: "
                "lower min_multiplier")

    @staticmethod
    def held_out_top1(details: Mapping[str, Any]) -> float | None:
        """The held-out top-1 of the chosen greedy step (`trajectory[trajectory_step]`)."""
        step, trajectory = details.get("trajectory_step"), details.get("trajectory") or []
        if step is not None and 0 <= step < len(trajectory):
            return trajectory[step].get("top1")
        return None

    @staticmethod
    def estimate_train_macs(graph: StageGraph, s: AutoSlimSettings, *, images: float,
                            target_macs: int, val_images: float = 0.0) -> int:
        """Projected cost (dry runs): sandwich training (forward + backward of every width of
        a step) plus the greedy pass's forwards (BN recalibration and scoring per candidate,
        batches of 128 and up to 256 images)."""
        from wtc.optimizers.widthgrid import WidthGrid

        grid = WidthGrid.from_settings(graph, s)
        trained = images * (1.0 - s.held_out)
        train = training_macs(grid.mean_sandwich_macs(0, s.samples, draws=16), trained) * s.epochs
        _, spent = estimate_greedy(grid, target_macs)
        scored = s.bn_batches * 128 + min(images * s.held_out, s.eval_batches * 256.0)
        return int(train + spent * scored)

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:
        from wtc.optimizers.greedy import autoslim_search

        assert isinstance(settings, AutoSlimSettings)
        from wtc.optimizers.sandwich import held_out_data

        data = held_out_data(ctx, settings.held_out)
        return autoslim_search(ctx, settings, data,
                               targets=list(ctx.targets or (ctx.target_macs,)))


def estimate_greedy(grid: WidthGrid, target_macs: int) -> tuple[int, int]:
    """(candidates scored, their summed per-image MACs) of a greedy pass down to the target,
    projected without scores: the pass is assumed to shrink the relatively widest group first
    (a balanced path; the real one follows held-out accuracy)."""
    cur = dict(grid.max)
    count = spent = 0
    while grid.macs(cur) > target_macs:
        options = {g: w for g in cur if (w := grid.narrower(g, cur[g])) is not None}
        if not options:
            break
        spent += sum(grid.macs({**cur, g: w}) for g, w in options.items())
        count += len(options)
        g = max(options, key=lambda g: cur[g] / grid.max[g])
        cur[g] = options[g]
    return count, spent


