"""Run state that must survive an interruption: seeds, RNG streams, checkpoints.

A checkpoint holds state_dicts and plain values only (loadable with weights_only=True) and is
written atomically; `load_checkpoint` names the file and what does not fit.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from wtc.atomic import atomic_write
from wtc.errors import CheckpointError
from wtc.nn.weights import checkpoint_file, load_failure, load_state_checked

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "wtc.checkpoint/1"


def seed_everything(seed: int) -> None:
    """Seed every RNG the trainer touches (python, numpy, torch CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    st = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a `torch.compile` and a DistributedDataParallel wrapper (the model
    itself otherwise)."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_checkpoint(path: str | Path, model: nn.Module, **extra: Any) -> None:
    """Atomically save the model's state_dict plus `extra` (optimizer, epoch, meta...)."""
    obj = {"format": CHECKPOINT_FORMAT, "model": unwrap(model).state_dict(), **extra}
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    spec_hash: str | None = None,
                    widths: dict[str, int] | None = None) -> dict[str, Any]:
    """Read a checkpoint (weights_only) and, given a model, load its weights strictly.

    Raises CheckpointError naming the file for a missing or corrupt file, a different spec
    hash or widths, and for shape mismatches the layer and both shapes.
    """
    p = checkpoint_file(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"checkpoint {p} {load_failure(e)}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or not isinstance(ckpt["model"], dict):
        raise CheckpointError(f"{p} is not a wtc checkpoint (no model state_dict in it)")
    saved_hash = ckpt.get("spec_hash")
    if spec_hash and saved_hash and saved_hash != spec_hash:
        raise CheckpointError(f"{p} was trained on a different spec (hash {saved_hash}, this "
                              f"spec has {spec_hash})")
    saved_w = ckpt.get("widths")
    if widths is not None and saved_w is not None and dict(saved_w) != dict(widths):
        diff = sorted(k for k in set(saved_w) | set(widths) if saved_w.get(k) != widths.get(k))
        shown = ", ".join(f"{k}: checkpoint {saved_w.get(k)} vs {widths.get(k)}"
                          for k in diff[:5])
        more = f" (and {len(diff) - 5} more)" if len(diff) > 5 else ""
        raise CheckpointError(f"{p} was trained with other widths: {shown}{more}; pass the "
                              "widths file it was trained with (--widths)")
    if model is not None:
        load_state_checked(unwrap(model), ckpt["model"], p)
    return ckpt
