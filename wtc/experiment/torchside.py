"""The two torch steps of the protocol that are not a search: the final training of a widths
file (no test-set evaluation) and the test-set evaluation of the trained weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from wtc.data import DataConfig, make_data_for
from wtc.graph import StageGraph, count_macs, training_macs
from wtc.nn import build_model
from wtc.trainer import (
    TrainConfig,
    evaluate,
    fit_or_resume,
    resolve_device,
    resolve_runtime,
    seed_everything,
)
from wtc.trainer.precision import has_grouped_conv


def train_final(graph: StageGraph, groups: dict[str, int], config: dict[str, Any], *, seed: int,
                threads: int | None, device: str, work_dir: Path | None) -> dict[str, Any]:
    """Train `groups` from scratch with the plan's recipe (`config`: the unit's flat mapping,
    validated here, once); checkpoints in `work_dir` (if given) let an interrupted training
    continue where it stopped."""
    cfg = TrainConfig.model_validate({**config, "seed": seed, "threads": threads,
                                      "device": device, "out": None})
    data = make_data_for(graph.spec, cfg.data)
    seed_everything(seed)
    model = build_model(graph, groups)
    forward = count_macs(graph, groups)
    meta = {"spec_hash": graph.spec_hash, "widths": dict(groups)}
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    # (a training that finished before the driver recorded it is read back, not run again)
    res = fit_or_resume(model, data, cfg, run=work_dir, meta=meta, resume=True,
                        forward_macs=forward, evaluate_test=False)
    return _summary(res.model, res.history, forward, int(res.summary["images_seen"]),
                    _used(cfg, res.model))


def _used(cfg: TrainConfig, model: Any) -> dict[str, Any]:
    return resolve_runtime(cfg.precision, cfg.channels_last, resolve_device(cfg.device),
                           grouped_conv=has_grouped_conv(model)).to_json()


def _summary(model: Any, history: list[dict[str, Any]], forward: int, images: int,
             runtime: dict[str, Any]) -> dict[str, Any]:
    last = history[-1] if history else {}
    summary = {"epochs": len(history), "train_loss": last.get("train_loss"),
               "train_top1": last.get("train_top1"), "forward_macs": forward,
               "images_seen": images}
    return {"model": model, "summary": summary, "train_macs": training_macs(forward, images),
            "seconds": last.get("seconds_total"), "runtime": runtime}


def evaluate_test(graph: StageGraph, groups: dict[str, int], state: dict[str, Any],
                  data: dict[str, Any], *, threads: int | None, device: str,
                  precision: str = "fp32", channels_last: bool | str = False
                  ) -> dict[str, Any]:
    """Top-1 and loss of the trained weights on the test set, in the unit's precision."""
    cfg = DataConfig(**data)
    bundle = make_data_for(graph.spec, cfg)
    model = build_model(graph, groups)
    model.load_state_dict(state, strict=True)
    dev = resolve_device(device)
    rt = resolve_runtime(precision, channels_last, dev, grouped_conv=has_grouped_conv(model))
    model.to(dev)
    if rt.channels_last:
        model.to(memory_format=torch.channels_last)
    return {**evaluate(model, bundle.test, device=dev, runtime=rt), "runtime": rt.to_json()}
