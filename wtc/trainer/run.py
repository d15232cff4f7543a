"""`train`: spec + widths + config -> a trained run directory; `evaluate_checkpoint`.

A run directory holds `checkpoint.pt` (state_dicts only, loadable with weights_only=True),
`widths.json`, `spec.yaml`, `metrics.jsonl` (one line per epoch) and `summary.json`; every file
is written atomically so an interrupted run never leaves a half-written one.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import torch

from wtc.atomic import atomic_write, make_folders
from wtc.data import make_data_for
from wtc.errors import CheckpointError, ConfigError, UserInputError
from wtc.graph import SpecLike, StageGraph, as_graph
from wtc.nn import build_model
from wtc.nn.bn import recalibrate_bn
from wtc.nn.weights import checkpoint_file
from wtc.trainer.config import TrainConfig, TrainResult
from wtc.trainer.distributed import dist_info, resolve_device
from wtc.trainer.evaluation import evaluate, forward_macs
from wtc.trainer.loop import fit
from wtc.trainer.precision import has_grouped_conv, resolve_runtime
from wtc.trainer.state import load_checkpoint, seed_everything
from wtc.widths import Widths, WidthsLike, as_widths, base_widths, save_widths

# what `train` and `evaluate_checkpoint` accept as widths (None: the spec's base widths)

RECALIBRATION_BATCHES = 20  # training batches that re-estimate BN statistics after --init-from


def _resolve_model_inputs(spec: SpecLike, widths: WidthsLike
                          ) -> tuple[StageGraph, Widths, Path | None]:
    """(graph, Widths, spec path) from a spec path / Spec / StageGraph and widths (a widths
    file, Widths, a group → channels mapping, or None for the base widths)."""
    spec_path = Path(spec) if isinstance(spec, str | Path) else None
    graph = as_graph(spec)
    w = base_widths(graph) if widths is None else as_widths(graph, widths)
    return graph, w, spec_path


def _groups(w: Widths) -> dict[str, int]:
    return {str(k): int(v) for k, v in w.groups.items()}


def _save_widths_copy(w: Widths, widths_src: WidthsLike, path: Path) -> None:
    if isinstance(widths_src, str | Path) and Path(widths_src).is_file():
        atomic_write(path, lambda f: f.write(Path(widths_src).read_bytes()))
        return
    save_widths(w, path)


def train(spec: SpecLike, widths: WidthsLike = None, cfg: TrainConfig | None = None, *,
          resume: bool = False, progress: str = "none", init_from: str | Path | None = None,
          importance: str = "l1") -> TrainResult:
    """Train spec (path, Spec or StageGraph) at widths (path, Widths or None = base) with cfg.

    `init_from`: base-width weights of the spec (`wtc import --weights`, or a checkpoint of
    the base network) to start from, each width group keeping its most `importance`-ant
    channels (`wtc.nn.prune`); a resumed run continues from its own checkpoint instead.
    Writes the run directory cfg.out: checkpoint.pt, widths.json, spec.yaml, metrics.jsonl,
    summary.json. Nothing is written before the data and model are known to be good.
    """
    if cfg is None:
        raise ConfigError("train needs a TrainConfig (at least data=...)")
    graph, w, spec_path = _resolve_model_inputs(spec, widths)
    s = graph.spec
    data = make_data_for(s, cfg.data)
    seed_everything(cfg.data.seed)
    model = build_model(graph, w)
    if init_from is not None and not resume:
        model.load_state_dict(start_state(graph, w, init_from, importance))
        # the kept channels' BN statistics were measured with the removed ones upstream:
        # re-estimate them (no weight changes) before training starts
        recalibrate_bn(model, itertools.islice(iter(data.train), RECALIBRATION_BATCHES))
    forward = forward_macs(graph, w, model, data)
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
        return fit(model, data, cfg, forward_macs=forward, progress=progress,
                   out_dir=out, resume=resume, meta=meta)
    except UserInputError:  # a full disk, a bad image, nothing to resume: no partial run
        if created is not None and not (out / "checkpoint.pt").exists():  # type: ignore[operator]
            shutil.rmtree(created, ignore_errors=True)  # nothing to resume: no partial run
        raise


def start_state(graph: StageGraph, widths: Widths, path: str | Path, importance: str = "l1"
                ) -> dict[str, Any]:
    """The state_dict at `widths` cut from the base-width weights in `path`."""
    from wtc.nn.prune import init_from_trained
    from wtc.nn.weights import read_checkpoint

    ckpt = read_checkpoint(path)
    saved = ckpt.get("spec_hash")
    if saved and str(saved) != str(graph.spec_hash):
        raise CheckpointError(f"{path} holds weights of another spec (hash {saved}; this spec "
                              f"has {graph.spec_hash})")
    return init_from_trained(graph, _groups(widths), ckpt["model"], importance)


def evaluate_checkpoint(spec: SpecLike, checkpoint: str | Path, cfg: TrainConfig,
                        widths: WidthsLike = None) -> dict[str, Any]:
    """Test-set top-1 and loss of a saved checkpoint. Widths default to the run's widths.json."""
    ck = Path(checkpoint)
    if widths is None and (ck.parent / "widths.json").is_file():
        widths = ck.parent / "widths.json"
    graph, w, _ = _resolve_model_inputs(spec, widths)
    checkpoint_file(ck)
    data = make_data_for(graph.spec, cfg.data)
    model = build_model(graph, w)
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

