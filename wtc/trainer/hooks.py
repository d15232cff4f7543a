"""`TrainHooks`: how an optimizer customises `fit` without forking it.

`fit` owns the runtime (device, precision, DDP, optimizer, schedule, checkpoints, resume, progress);
a hooks object owns what is particular to a method: which parameters the weight optimizer
trains, the forward/backward of one batch (extra losses, several forwards per batch such as
the sandwich rule), what happens after each optimizer step and at the end of each epoch, how
the model is evaluated, and the state that must survive a resume. The default is plain
supervised training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from wtc.trainer.evaluation import evaluate
from wtc.trainer.precision import FP32, Runtime

__all__ = ["TrainHooks"]


class TrainHooks:
    """Customises fit() without forking it. Default = plain supervised training."""

    # set by fit before training: the run's precision and memory format, for `evaluate`
    runtime: Runtime = FP32
    # the model's shapes are the same at every step, so `compile: true` may compile it (a
    # supernet that changes widths per forward would recompile for every width set)
    static_shapes: bool = True

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """What the weight optimizer trains (default: every parameter that requires grad).
        Weight decay goes to the >1-D ones only."""
        return [p for p in model.parameters() if p.requires_grad]

    def step(self, model: nn.Module, x: Tensor, y: Tensor, criterion: nn.Module,
             backward: Callable[[Tensor], None]) -> tuple[Tensor, Tensor]:
        """Forward AND backward for one batch; returns (loss for logging, detached; logits for
        train metrics). `model` may be DDP-wrapped; call backward(loss) (it applies the AMP
        scaler; gradients were zeroed before, so several calls accumulate). Runs under the
        autocast of the run. Default: logits = model(x); loss = criterion(logits, y);
        backward(loss)."""
        logits = model(x)
        loss = criterion(logits, y)
        backward(loss)
        return loss.detach(), logits

    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """After the optimizer and scheduler step (model unwrapped); `step` is the 0-based
        index of the step just taken, `total_steps` the run's planned total."""

    def end_epoch(self, model: nn.Module, epoch: int) -> dict[str, Any] | None:
        """After an epoch's last step, before evaluation and the checkpoint (model
        unwrapped); extra metrics returned are merged into the epoch row."""
        return None

    def evaluate(self, model: nn.Module, loader: Any, device: Any) -> dict[str, float]:
        """Metrics over `loader` ("top1", "loss"; default: `wtc.trainer.evaluate`)."""
        return evaluate(model, loader, device=device, runtime=self.runtime)

    def state_dict(self) -> dict[str, Any]:
        """State saved in the checkpoint under "hooks" (tensors and plain values only: the
        checkpoint is read with weights_only=True). Empty state is not saved."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned, on resume."""
