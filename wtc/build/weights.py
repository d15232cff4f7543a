"""Loading saved weights into a built model, with an error that says which layer does not fit.

Shared by the trainer (resume, eval) and the exporter: a checkpoint made for other widths
names the state_dict key and both shapes instead of torch's long RuntimeError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from wtc.errors import CheckpointError


def load_state_checked(model: nn.Module, state: dict[str, Any], path: Path | str
                       ) -> None:
    """load_state_dict(strict) with an error that names the layer and both shapes."""
    own = model.state_dict()
    for k, v in state.items():
        if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{path} does not fit the model: layer '{k}' has shape {tuple(v.shape)} in the "
                f"checkpoint but {tuple(own[k].shape)} in the model (wrong spec or widths?)")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5
                                                                 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}" + (
                " ..." if len(unexpected) > 5 else ""))
        raise CheckpointError(f"{path} does not fit the model: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)
