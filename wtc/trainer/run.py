"""`train`: spec + widths + config -> a trained run directory; `evaluate_checkpoint`.

A run directory holds `checkpoint.pt` (state_dicts only, loadable with weights_only=True),
`widths.json`, `spec.yaml`, `metrics.jsonl` (one line per epoch) and `summary.json`; every file
is written atomically so an interrupted run never leaves a half-written one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from wtc.data import make_data
from wtc.errors import ConfigError, UserInputError
from wtc.graph import compile_spec, count_macs
from wtc.nn import build_model
from wtc.nn.weights import checkpoint_file
from wtc.spec import load_spec
from wtc.trainer.config import TrainConfig, TrainResult
from wtc.trainer.distributed import dist_info, resolve_device
from wtc.trainer.evaluation import evaluate, torch_forward_macs
from wtc.trainer.loop import fit
from wtc.trainer.precision import has_grouped_conv, resolve_runtime
from wtc.trainer.state import load_checkpoint, seed_everything
from wtc.widths import atomic_write, base_widths, load_widths, make_folders, save_widths


def _build(graph: Any, widths: Any) -> nn.Module:
    """The one place a model is built from graph + widths."""
    return build_model(graph, widths)


def _resolve_model_inputs(spec: Any, widths: Any) -> tuple[Any, Any, Path | None]:
    """(graph, Widths, spec path) from a spec path / Spec / StageGraph and widths (path or obj)."""
    spec_path = None
    if isinstance(spec, str | Path):
        spec_path = Path(spec)
        spec = load_spec(spec_path)
    graph = spec if hasattr(spec, "spec_hash") else compile_spec(spec)
    if widths is None:
        w = base_widths(graph)
    elif isinstance(widths, str | Path):
        w = load_widths(widths, graph)
    else:
        w = widths
    return graph, w, spec_path


def _groups(w: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (w.groups if hasattr(w, "groups") else w).items()}


def _save_widths_copy(w: Any, widths_src: Any, path: Path) -> None:
    if isinstance(widths_src, str | Path) and Path(widths_src).is_file():
        atomic_write(path, lambda f: f.write(Path(widths_src).read_bytes()))
        return
    save_widths(w, path)


def train(spec: Any, widths: Any = None, cfg: TrainConfig | None = None, *,
          resume: bool = False, progress: str = "none") -> TrainResult:
    """Train spec (path, Spec or StageGraph) at widths (path, Widths or None = base) with cfg.

    Writes the run directory cfg.out: checkpoint.pt, widths.json, spec.yaml, metrics.jsonl,
    summary.json. Nothing is written before the data and model are known to be good.
    """
    if cfg is None:
        raise ConfigError("train needs a TrainConfig (at least data=...)")
    graph, w, spec_path = _resolve_model_inputs(spec, widths)
    s = graph.spec
    data = make_data(cfg, channels=s.input.channels, resolution=cfg.resolution or
                     s.input.resolution, num_classes=s.classes)
    seed_everything(cfg.seed)
    model = _build(graph, w)
    forward_macs = int(count_macs(graph, w))
    if data.resolution != s.input.resolution:  # MACs scale with the pixel count
        forward_macs = torch_forward_macs(
            model, torch.zeros(1, data.channels, data.resolution, data.resolution))
    meta = {"spec_hash": str(graph.spec_hash), "widths": _groups(w)}
    if spec_path is not None:
        meta["spec"] = str(spec_path)
    out = Path(cfg.out) if cfg.out else None
    rank, _ = dist_info()
    created = None
    try:
        if out is not None and rank == 0:
            created = make_folders(out)
            _save_widths_copy(w, widths, out / "widths.json")
            if spec_path is not None:
                atomic_write(out / "spec.yaml", lambda f: f.write(Path(spec_path).read_bytes()))
        return fit(model, data, cfg, forward_macs=forward_macs, progress=progress,
                   out_dir=out, resume=resume, meta=meta)
    except UserInputError:  # a full disk, a bad image, nothing to resume: no partial run
        if created is not None and not (out / "checkpoint.pt").exists():  # type: ignore[operator]
            shutil.rmtree(created, ignore_errors=True)  # nothing to resume: no partial run
        raise


def evaluate_checkpoint(spec: Any, checkpoint: str | Path, cfg: TrainConfig,
                        widths: Any = None) -> dict[str, Any]:
    """Test-set top-1 and loss of a saved checkpoint. Widths default to the run's widths.json."""
    ck = Path(checkpoint)
    if widths is None and (ck.parent / "widths.json").is_file():
        widths = ck.parent / "widths.json"
    graph, w, _ = _resolve_model_inputs(spec, widths)
    checkpoint_file(ck)
    s = graph.spec
    data = make_data(cfg, channels=s.input.channels, resolution=cfg.resolution or
                     s.input.resolution, num_classes=s.classes)
    model = _build(graph, w)
    load_checkpoint(ck, model, spec_hash=str(graph.spec_hash), widths=_groups(w))
    device = resolve_device(cfg.device)
    model.to(device)
    runtime = resolve_runtime(cfg.precision, cfg.channels_last, device,
                              grouped_conv=has_grouped_conv(model))
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    res = evaluate(model, data.test, device=device, runtime=runtime)
    return {"checkpoint": str(ck), "data": data.name, **runtime.to_json(),
            "top1": res["top1"], "loss": res["loss"],
            "images": res["n"], "num_classes": data.num_classes, "resolution": data.resolution}

