"""Loading saved weights into a built model, with an error that says which layer does not fit.

`read_checkpoint` reads a `wtc train` checkpoint or a bare state_dict (weights_only);
`load_weights` loads one into a model, naming the layer (and the widths) that do not fit.

Shared by the trainer (resume, eval) and the exporter: a checkpoint made for other widths
names the state_dict key and both shapes instead of torch's long RuntimeError.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
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


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint path, after checking it names a file (a folder or a missing path is a
    CheckpointError that says which)."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    if p.is_dir():
        raise CheckpointError(f"checkpoint {p} is a folder; give the checkpoint file in it "
                              "(e.g. checkpoint.pt)")
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} is not a regular file")
    return p


def load_failure(e: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, as the end of a sentence about it. A
    file that needs pickled objects is said to be refused on purpose: torch's own advice
    ("re-run with weights_only=False") would turn that safety off, so it is never quoted."""
    text = str(e).strip()
    if "weights_only" in text or isinstance(e, pickle.UnpicklingError):
        return ("is refused: it holds pickled Python objects, which wtc never loads (they can "
                "run code); a checkpoint must hold only tensors and plain values, as `wtc "
                "train` and torch.save(model.state_dict()) write them")
    reason = text.splitlines()[0] if text else type(e).__name__
    return f"is corrupt or not a torch file: {reason[:200]}"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a `wtc train` checkpoint or a bare state_dict as {"model": state_dict, ...meta}.

    Raises CheckpointError naming the file when it is missing, unreadable or holds no weights.
    """
    p = checkpoint_file(path)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file (pickle, zip, EOF, ...)
        raise CheckpointError(f"checkpoint {p} {load_failure(e)}") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), Mapping):
        ckpt = dict(obj)
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor)
                                                  for v in obj.values()):
        ckpt = {"model": dict(obj)}  # a bare state_dict
    else:
        raise CheckpointError(f"checkpoint {p} holds no model weights (expected a wtc checkpoint "
                              "with a 'model' state_dict, or a bare state_dict)")
    state = {str(k): v for k, v in ckpt["model"].items()}
    for prefix in ("module.", "_orig_mod."):  # DDP / torch.compile wrappers
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    ckpt["model"] = state
    return ckpt


def load_weights(model: nn.Module, ckpt: Mapping[str, Any], path: str | Path, *,
                 spec_hashes: tuple[str, ...] = ()) -> None:
    """Load a checkpoint's weights strictly; errors name the layer and both shapes.

    spec_hashes: the spec hashes the checkpoint may record (none recorded: not checked)."""
    saved_hash = ckpt.get("spec_hash")
    if spec_hashes and saved_hash and str(saved_hash) not in spec_hashes:
        raise CheckpointError(f"checkpoint {path} was trained on a different spec (hash "
                              f"{saved_hash}; this spec has {spec_hashes[0]})")
    try:
        load_state_checked(model, ckpt["model"], path)
    except CheckpointError as e:
        saved_w = ckpt.get("widths")
        own_w = getattr(model, "widths", None)
        if isinstance(saved_w, Mapping) and own_w is not None and dict(saved_w) != own_w:
            diff = sorted(k for k in set(saved_w) | set(own_w)
                          if saved_w.get(k) != own_w.get(k))
            shown = ", ".join(f"{k}: checkpoint {saved_w.get(k)} vs {own_w.get(k)}"
                              for k in diff[:4])
            more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
            raise CheckpointError(f"{e}. The checkpoint was trained with other widths "
                                  f"({shown}{more}); pass the widths file it was trained "
                                  "with") from None
        raise
