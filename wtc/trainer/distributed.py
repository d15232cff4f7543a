"""Devices and torch.distributed: the device a rank uses, joining torchrun's process group,
keeping BN statistics and RNG streams consistent over ranks."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn

from wtc.data import dist_info
from wtc.errors import ConfigError
from wtc.trainer.state import rng_state

__all__ = ["cpu_cores", "dist_info", "gather_rng", "init_distributed", "leave_distributed",
           "resolve_device", "sync_buffers"]


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when present; under torchrun each rank takes its LOCAL_RANK GPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA device is available")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_process_threads(threads: int | None, device: str = "cpu") -> None:
    """Set this process's torch CPU threads, once, from the process's entry point (the CLI, a
    unit worker, a script): `threads`, else the cores split between torchrun's local ranks.
    Nothing is set for a GPU run. Library calls (`fit`, `train`, `search`) never set it."""
    if resolve_device(device).type != "cpu":
        return
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1)))
    torch.set_num_threads(threads or max(1, cpu_cores() // max(1, local)))


def init_distributed(device: torch.device) -> bool:
    """Join torchrun's process group when WORLD_SIZE > 1; True if this call created it."""
    import torch.distributed as dist

    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def leave_distributed(finished: bool) -> None:
    """Tear down the process group `init_distributed` created, after the caller dropped its
    DDP wrapper. A rank that finished waits for the others first, so no rank shuts its gloo
    connections while a peer is still using them (a rank aborting at exit with "terminate
    called without an active exception" is what a racing teardown looks like); a rank leaving
    on an error does not wait, since its peers may never arrive."""
    import gc

    import torch.distributed as dist

    gc.collect()  # a DDP reducer caught in a reference cycle would keep the group alive
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def sync_buffers(model: nn.Module, world: int) -> None:
    """Average BN running statistics over ranks (each rank updated its own after the last
    forward), so every rank evaluates and checkpoints the same model."""
    if world <= 1:
        return
    import torch.distributed as dist

    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b, op=dist.ReduceOp.SUM)
            b.div_(world)
        else:
            dist.broadcast(b, src=0)


def gather_rng(world: int) -> list[dict[str, Any]]:
    """Every rank's RNG state, so rank r resumes with its own stream."""
    state = rng_state()
    if world <= 1:
        return [state]
    import torch.distributed as dist

    states: list[Any] = [None] * world
    dist.all_gather_object(states, state)
    return states
