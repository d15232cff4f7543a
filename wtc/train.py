"""The trainer: one config, one general loop (`fit`), checkpoints that resume bit-exactly.

`fit` is the loop every optimizer reuses (MorphNet adds its regularizer through `extra_loss`);
`train` is the high-level entry the CLI calls: spec + widths + config -> trained run directory.
A run directory holds `checkpoint.pt` (state_dicts only, loadable with weights_only=True),
`widths.json`, `metrics.jsonl` (one line per epoch) and `summary.json`; every file is written
atomically so an interrupted run never leaves a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field, ValidationError

from wtc._callable import make_module_callable
from wtc.build.weights import load_state_checked
from wtc.data import DataBundle, DataConfig, dist_info, make_data
from wtc.errors import CheckpointError, ConfigError
from wtc.settings_file import read_yaml_mapping
from wtc.widths import atomic_write, atomic_write_text

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "wtc.checkpoint/1"


class TrainConfig(DataConfig):
    """Everything a training run needs besides the model: data (inherited), optimizer, runtime."""

    epochs: int = Field(1, ge=1)
    lr: float = Field(0.1, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    amp_dtype: Literal["bf16", "fp16"] = "bf16"
    channels_last: bool = True
    threads: int | None = Field(None, ge=1, description="CPU threads (default: cores per rank)")
    eval_every: int = Field(1, ge=1, description="test-set evaluation every N epochs (and last)")
    out: str | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """A YAML file (optional) with overrides on top; None overrides are ignored."""
        values: dict[str, Any] = {}
        if path is not None:
            values.update(read_yaml_mapping(path, "training config",
                                            "a mapping of training options"))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as e:
            src = f" in {path}" if path else ""
            problems = "; ".join(
                f"{'.'.join(str(x) for x in er['loc']) or 'config'}: {er['msg']}"
                for er in e.errors())
            raise ConfigError(f"bad training options{src}: {problems}") from None


@dataclass
class TrainResult:
    """What a run produced; `model` is the trained, unwrapped module."""

    model: nn.Module
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    out_dir: Path | None = None
    checkpoint: Path | None = None
    top1: float = field(init=False)
    train_macs: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.top1 = self.summary.get("top1", float("nan"))
        self.train_macs = self.summary.get("train_macs")


# --------------------------------------------------------------------------- runtime


def seed_everything(seed: int) -> None:
    """Seed every RNG the trainer touches (python, numpy, torch CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when present; under torchrun each rank takes its LOCAL_RANK GPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA device is available")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _init_distributed(device: torch.device) -> bool:
    """Join torchrun's process group when WORLD_SIZE > 1; True if this call created it."""
    import torch.distributed as dist

    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights only: BN parameters and biases (all ≤1-D tensors) get none."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Per-step multiplier: linear warm-up, then cosine / linear decay to 0, or constant."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    t = (step - warmup) / (total - warmup)
    t = min(max(t, 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0 - t


def torch_forward_macs(model: nn.Module, sample: torch.Tensor) -> int:
    """Forward MACs per image measured with torch's flop counter (fallback when not passed)."""
    from torch.utils.flop_counter import FlopCounterMode

    m = _unwrap(model)
    was = m.training
    m.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(sample[:1])
    m.train(was)
    return int(fc.get_total_flops() // 2)


# --------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    st = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [st[0], st[1].tolist(), int(st[2]), int(st[3]), float(st[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def save_checkpoint(path: str | Path, model: nn.Module, **extra: Any) -> None:
    """Atomically save the model's state_dict plus `extra` (optimizer, epoch, meta...)."""
    obj = {"format": CHECKPOINT_FORMAT, "model": _unwrap(model).state_dict(), **extra}
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    spec_hash: str | None = None,
                    widths: dict[str, int] | None = None) -> dict[str, Any]:
    """Read a checkpoint (weights_only) and, given a model, load its weights strictly.

    Raises CheckpointError naming the file for a missing or corrupt file, a different spec
    hash or widths, and for shape mismatches the layer and both shapes.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{p} is not a readable checkpoint (corrupt or not a "
                              f"torch file): {reason[:200]}") from None
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
        load_state_checked(_unwrap(model), ckpt["model"], p)
    return ckpt


# --------------------------------------------------------------------------- progress


class _Progress:
    """A rich bar on a terminal, plain lines per epoch otherwise, or silence."""

    def __init__(self, mode: str, enabled: bool) -> None:
        if mode == "auto":
            mode = "rich" if sys.stdout.isatty() else "plain"
        self.mode = mode if enabled else "none"
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.mode == "rich":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                 transient=False)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(f"epoch {epoch + 1}/{epochs}", total=steps, info="")

    def step(self, info: str | None = None) -> None:
        if self._bar is not None:
            kw = {"info": info} if info is not None else {}
            self._bar.update(self._task, advance=1, **kw)

    def epoch_end(self, row: dict[str, Any]) -> None:
        keys = ("train_loss", "train_top1", "val_top1", "top1", "lr", "seconds")
        text = f"epoch {row['epoch'] + 1}/{row['epochs']} " + " ".join(
            f"{k}={row[k]:.4g}" for k in keys if row.get(k) is not None)
        if self._bar is not None:
            self._bar.update(self._task, info=text.split(" ", 2)[-1])
        elif self.mode == "plain":
            print(text, flush=True)


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, *, device: torch.device | str | None = None,
             amp: bool = False, channels_last: bool = False) -> dict[str, float]:
    """Top-1 (fraction in [0, 1]) and mean cross-entropy of `model` over `loader`."""
    m = _unwrap(model)
    dev = torch.device(device) if device is not None else next(m.parameters()).device
    was = m.training
    m.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    n = 0
    for x, y in loader:
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(dev, amp, "bf16"):
            out = m(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum").double()
        correct += (out.argmax(1) == y).sum()
        n += len(y)
    m.train(was)
    if n == 0:
        return {"top1": float("nan"), "loss": float("nan"), "n": 0}
    return {"top1": correct.item() / n, "loss": loss_sum.item() / n, "n": n}


def _autocast(device: torch.device, enabled: bool, dtype: str) -> Any:
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


# --------------------------------------------------------------------------- the loop


def fit(model: nn.Module, data: DataBundle, cfg: TrainConfig, *,
        extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
        on_epoch_end: Callable[[nn.Module, int], None] | None = None,
        forward_macs: int | None = None,
        progress: str = "none",
        out_dir: str | Path | None = None,
        resume: bool | str | Path = False,
        meta: dict[str, Any] | None = None,
        max_epochs: int | None = None) -> TrainResult:
    """Train `model` on `data` for `cfg.epochs`; the loop every optimizer reuses.

    extra_loss(model) is added to the task loss each step (model unwrapped from DDP);
    on_epoch_end(model, epoch) runs after each epoch, before the checkpoint is written.
    forward_macs: per-image forward MACs (measured with torch's flop counter if None);
    training MACs = 3 x forward_macs x images processed. out_dir (default cfg.out) receives
    checkpoint.pt, metrics.jsonl and summary.json on rank 0; None writes nothing.
    resume: True continues from out_dir/checkpoint.pt, a path from that file.
    max_epochs stops after that many epochs in total (a time slice; resume later).
    progress: "auto" | "rich" | "plain" | "none" (the library prints nothing by default).
    """
    device = resolve_device(cfg.device)
    created_pg = _init_distributed(device)
    rank, world = dist_info()
    main = rank == 0
    try:
        return _fit(model, data, cfg, device, rank, world, main, extra_loss, on_epoch_end,
                    forward_macs, progress, out_dir, resume, meta or {}, max_epochs)
    finally:
        if created_pg:
            import torch.distributed as dist

            dist.destroy_process_group()


def _fit(model: nn.Module, data: DataBundle, cfg: TrainConfig, device: torch.device, rank: int,
         world: int, main: bool, extra_loss: Any, on_epoch_end: Any, forward_macs: int | None,
         progress: str, out_dir: str | Path | None, resume: bool | str | Path,
         meta: dict[str, Any], max_epochs: int | None) -> TrainResult:
    if device.type == "cpu":
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(cfg.threads or max(1, _cpu_cores() // max(1, local)))
    else:
        torch.cuda.set_device(device)
    use_amp = cfg.amp and device.type == "cuda"
    channels_last = cfg.channels_last and device.type == "cuda"
    out = Path(out_dir) if out_dir is not None else (Path(cfg.out) if cfg.out else None)
    ckpt_path = None
    if resume:
        ckpt_path = Path(resume) if not isinstance(resume, bool) else (
            out / CHECKPOINT if out else None)
        if ckpt_path is None:
            raise ConfigError("resume needs an output directory holding checkpoint.pt")

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    raw = model
    opt = torch.optim.SGD(param_groups(raw, cfg.weight_decay), lr=cfg.lr,
                          momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    steps_per_epoch = len(data.train)
    total = steps_per_epoch * cfg.epochs
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, warmup, cfg.schedule))
    scaler = torch.amp.GradScaler("cuda") if use_amp and cfg.amp_dtype == "fp16" else None

    start_epoch, images_seen, history = 0, 0, []
    seed_everything(cfg.seed + rank)
    if ckpt_path is not None:
        ck = load_checkpoint(ckpt_path, raw, spec_hash=meta.get("spec_hash"),
                             widths=meta.get("widths"))
        try:
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            if scaler is not None and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
            start_epoch, images_seen = int(ck["epoch"]), int(ck["images_seen"])
            history = list(ck.get("history", []))
            rng = ck["rng"]
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt_path} lacks training state to resume from ({e}); "
                                  "it may be a weights-only checkpoint") from None
        if int(ck.get("world_size", world)) == world and rank < len(rng):
            _set_rng_state(rng[rank])
        if start_epoch >= cfg.epochs:
            raise CheckpointError(f"{ckpt_path} already finished {start_epoch} epochs; "
                                  f"raise --epochs above {start_epoch} to train further")

    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            raw, device_ids=[device.index] if device.type == "cuda" else None)
    if forward_macs is None:
        x0, _ = next(iter(data.test))
        forward_macs = torch_forward_macs(raw, x0.to(device))

    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    end_epoch = min(cfg.epochs, max_epochs) if max_epochs else cfg.epochs
    if out is not None and main:
        out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    seconds_before = float(history[-1]["seconds_total"]) if history else 0.0
    per_rank = getattr(data.train, "num_samples", None)

    with _Progress(progress, main) as bar:
        for epoch in range(start_epoch, end_epoch):
            t0 = time.perf_counter()
            model.train()
            data.train.set_epoch(epoch)
            bar.epoch_start(epoch, cfg.epochs, steps_per_epoch)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0
            for i, (x, y) in enumerate(data.train):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with _autocast(device, use_amp, cfg.amp_dtype):
                    logits = model(x)
                    loss = criterion(logits, y)
                    total_loss = loss + extra_loss(raw) if extra_loss is not None else loss
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(total_loss).backward()
                    if cfg.grad_clip:
                        scaler.unscale_(opt)
                        nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                else:
                    total_loss.backward()
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
                    opt.step()
                sched.step()
                bs = len(y)
                loss_sum += loss.detach() * bs
                correct += (logits.detach().argmax(1) == y).sum()
                seen += bs
                if bar.mode == "rich" and (i % 10 == 0 or i == steps_per_epoch - 1):
                    bar.step(f"loss {loss_sum.item() / seen:.4f}")
                else:
                    bar.step()
            images_seen += (per_rank if per_rank is not None else seen) * world
            _sync_buffers(raw, world)
            row: dict[str, Any] = {
                "epoch": epoch, "epochs": cfg.epochs,
                "train_loss": loss_sum.item() / max(seen, 1),
                "train_top1": correct.item() / max(seen, 1),
                "lr": opt.param_groups[0]["lr"],
            }
            if on_epoch_end is not None:
                on_epoch_end(raw, epoch)
            if main:
                if data.val is not None:
                    v = evaluate(raw, data.val, device=device, amp=use_amp,
                                 channels_last=channels_last)
                    row.update(val_top1=v["top1"], val_loss=v["loss"])
                if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
                    t = evaluate(raw, data.test, device=device, amp=use_amp,
                                 channels_last=channels_last)
                    row.update(top1=t["top1"], loss=t["loss"])
            row.update(images_seen=images_seen, train_macs=3 * forward_macs * images_seen,
                       seconds=time.perf_counter() - t0,
                       seconds_total=seconds_before + time.perf_counter() - t_start)
            history.append(row)
            rngs = _gather_rng(world)
            if main and out is not None:
                save_checkpoint(out / CHECKPOINT, raw, optimizer=opt.state_dict(),
                                scheduler=sched.state_dict(),
                                scaler=scaler.state_dict() if scaler else None,
                                epoch=epoch + 1, images_seen=images_seen, history=history,
                                rng=rngs, world_size=world, config=cfg.model_dump(),
                                forward_macs=forward_macs, **meta)
                atomic_write_text(out / "metrics.jsonl",
                                  "".join(json.dumps(r) + "\n" for r in history))
            bar.epoch_end(row)
            if world > 1:
                import torch.distributed as dist

                dist.barrier()

    last = history[-1] if history else {}
    summary = {
        "epochs": len(history), "epochs_planned": cfg.epochs,
        "top1": last.get("top1"), "loss": last.get("loss"),
        "val_top1": last.get("val_top1"), "train_loss": last.get("train_loss"),
        "forward_macs": forward_macs, "images_seen": images_seen,
        "train_macs": 3 * forward_macs * images_seen,
        "seconds": last.get("seconds_total"),
        "device": str(device), "world_size": world, "data": data.name,
        "train_size": data.train_size, "num_classes": data.num_classes,
        "resolution": data.resolution, **meta,
    }
    if main and out is not None:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return TrainResult(model=raw, history=history, summary=summary, out_dir=out,
                       checkpoint=out / CHECKPOINT if out is not None else None)


def _sync_buffers(model: nn.Module, world: int) -> None:
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


def _gather_rng(world: int) -> list[dict[str, Any]]:
    """Every rank's RNG state, so rank r resumes with its own stream."""
    state = _rng_state()
    if world <= 1:
        return [state]
    import torch.distributed as dist

    states: list[Any] = [None] * world
    dist.all_gather_object(states, state)
    return states


# --------------------------------------------------------------------------- high level


def _build(graph: Any, widths: Any) -> nn.Module:
    """The one place a model is built from graph + widths."""
    from wtc.build import build_model

    return build_model(graph, widths)


def _resolve_model_inputs(spec: Any, widths: Any) -> tuple[Any, Any, Path | None]:
    """(graph, Widths, spec path) from a spec path / Spec / StageGraph and widths (path or obj)."""
    import wtc

    spec_path = None
    if isinstance(spec, str | Path):
        spec_path = Path(spec)
        spec = wtc.load_spec(spec_path)
    graph = spec if hasattr(spec, "spec_hash") else wtc.compile_spec(spec)
    if widths is None:
        w = wtc.base_widths(graph)
    elif isinstance(widths, str | Path):
        w = wtc.load_widths(widths, graph)
    else:
        w = widths
    return graph, w, spec_path


def _groups(w: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (w.groups if hasattr(w, "groups") else w).items()}


def _save_widths_copy(w: Any, widths_src: Any, path: Path) -> None:
    if isinstance(widths_src, str | Path) and Path(widths_src).is_file():
        atomic_write(path, lambda f: f.write(Path(widths_src).read_bytes()))
        return
    import wtc

    wtc.save_widths(w, path)


def train(spec: Any, widths: Any = None, cfg: TrainConfig | None = None, *,
          resume: bool = False, progress: str = "none") -> TrainResult:
    """Train spec (path, Spec or StageGraph) at widths (path, Widths or None = base) with cfg.

    Writes the run directory cfg.out: checkpoint.pt, widths.json, spec.yaml, metrics.jsonl,
    summary.json. Nothing is written before the data and model are known to be good.
    """
    import wtc

    if cfg is None:
        raise ConfigError("train needs a TrainConfig (at least data=...)")
    graph, w, spec_path = _resolve_model_inputs(spec, widths)
    s = graph.spec
    data = make_data(cfg, channels=s.input.channels, resolution=cfg.resolution or
                     s.input.resolution, num_classes=s.classes)
    seed_everything(cfg.seed)
    model = _build(graph, w)
    forward_macs = int(wtc.count_macs(graph, w))
    if data.resolution != s.input.resolution:  # MACs scale with the pixel count
        forward_macs = torch_forward_macs(
            model, torch.zeros(1, data.channels, data.resolution, data.resolution))
    meta = {"spec_hash": str(graph.spec_hash), "widths": _groups(w)}
    if spec_path is not None:
        meta["spec"] = str(spec_path)
    out = Path(cfg.out) if cfg.out else None
    rank, _ = dist_info()
    if out is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        _save_widths_copy(w, widths, out / "widths.json")
        if spec_path is not None:
            atomic_write(out / "spec.yaml", lambda f: f.write(Path(spec_path).read_bytes()))
    return fit(model, data, cfg, forward_macs=forward_macs, progress=progress, out_dir=out,
               resume=resume, meta=meta)


def evaluate_checkpoint(spec: Any, checkpoint: str | Path, cfg: TrainConfig,
                        widths: Any = None) -> dict[str, Any]:
    """Test-set top-1 and loss of a saved checkpoint. Widths default to the run's widths.json."""
    ck = Path(checkpoint)
    if widths is None and (ck.parent / "widths.json").is_file():
        widths = ck.parent / "widths.json"
    graph, w, _ = _resolve_model_inputs(spec, widths)
    if not ck.is_file():
        raise CheckpointError(f"checkpoint {ck} does not exist")
    s = graph.spec
    data = make_data(cfg, channels=s.input.channels, resolution=cfg.resolution or
                     s.input.resolution, num_classes=s.classes)
    model = _build(graph, w)
    load_checkpoint(ck, model, spec_hash=str(graph.spec_hash), widths=_groups(w))
    device = resolve_device(cfg.device)
    model.to(device)
    res = evaluate(model, data.test, device=device, amp=cfg.amp and device.type == "cuda")
    return {"checkpoint": str(ck), "data": data.name, "top1": res["top1"], "loss": res["loss"],
            "images": res["n"], "num_classes": data.num_classes, "resolution": data.resolution}


make_module_callable(__name__, "train")
