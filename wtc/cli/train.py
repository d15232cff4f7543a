"""`wtc train` and `wtc eval`: thin wrappers over `wtc.train` and `evaluate_checkpoint`.

torch is imported inside the commands, so `wtc --help` and the other commands stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from wtc.cli.common import (
    check_options,
    handle_errors,
    out,
    parse_channels_last,
    print_json,
)
from wtc.cli.params import (
    BatchOpt,
    ChannelsLastOpt,
    Commands,
    DataOpt,
    DataRootOpt,
    DeviceOpt,
    EpochsOpt,
    FractionOpt,
    JsonOpt,
    PrecisionOpt,
    ResolutionOpt,
    SeedOpt,
    SpecArg,
    WidthsOpt,
)
from wtc.errors import ConfigError

app = Commands()

# train and eval read a --config file first; an option given here overrides its value
ClassesOpt = Annotated[str | None, typer.Option(
    "--classes", help="comma-separated class subset, e.g. 0,1,2 (relabelled 0..k-1)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c",
                                                help="training options (YAML)")]


def parse_classes(value: str | None) -> list[int] | None:
    """'0,1,2' -> [0, 1, 2]."""
    if value is None or not value.strip():
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--classes takes comma-separated class indices such as 0,1,2, "
                          f"not '{value}'") from None


InitFromOpt = Annotated[Path | None, typer.Option(
    "--init-from", help="start from these base-width weights (a `wtc import --weights` file or "
    "a checkpoint of the spec at base widths), keeping each width group's most important "
    "channels")]
ImportanceOpt = Annotated[str, typer.Option(
    "--importance", help="channel importance for --init-from: l1 (of the producing weights, "
    "BN folded in) | bn (|γ| of the norm after them)")]


@app.command("train")
@handle_errors
def train_cmd(
    spec: SpecArg,
    widths: WidthsOpt = None,
    data: DataOpt = None,
    data_root: DataRootOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: Annotated[float | None, typer.Option("--lr", help="peak learning rate")] = None,
    fraction: FractionOpt = None,
    classes: ClassesOpt = None,
    resolution: ResolutionOpt = None,
    val_split: Annotated[float | None, typer.Option(
        "--val-split", help="held-out share of the training images (default 0: none)")] = None,
    config: ConfigOpt = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="continue from OUT/checkpoint.pt")] = False,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    channels_last: ChannelsLastOpt = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="data-loading worker processes (ImageFolder)")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", "-o", help="run directory (default runs/SPEC-NAME)")] = None,
    json_out: JsonOpt = False,
    init_from: InitFromOpt = None,
    importance: ImportanceOpt = "l1",
) -> None:
    """Train SPEC at the given widths; writes checkpoint, metrics and summary to --out."""
    cfg = _config(config, data=data, data_root=data_root, epochs=epochs,
                  batch_size=batch_size, lr=lr, fraction=fraction,
                  classes=parse_classes(classes), resolution=resolution,
                  val_split=val_split, seed=seed, device=device, workers=workers,
                  precision=precision, channels_last=parse_channels_last(channels_last),
                  out=str(out_dir) if out_dir else None)
    if cfg.out is None:
        cfg = cfg.model_copy(update={"out": str(Path("runs") / spec.stem)})
    from wtc.trainer import dist_info, set_process_threads, train

    set_process_threads(cfg.threads, cfg.device)
    res = train(spec, widths, cfg, resume=resume,
                progress="none" if json_out else "auto", init_from=init_from,
                importance=importance)
    if dist_info()[0] != 0:
        return
    _print_trained(spec, res, json_out)


@app.command("eval")
@handle_errors
def eval_cmd(
    spec: SpecArg,
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-k",
                                             help="checkpoint.pt of a run")],
    widths: WidthsOpt = None,
    data: DataOpt = None,
    data_root: DataRootOpt = None,
    classes: ClassesOpt = None,
    resolution: ResolutionOpt = None,
    batch_size: BatchOpt = None,
    config: ConfigOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    channels_last: ChannelsLastOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Test-set top-1 of a checkpoint (widths default to the run's widths.json)."""
    cfg = _config(config, data=data, data_root=data_root, classes=parse_classes(classes),
                  resolution=resolution, batch_size=batch_size, device=device,
                  precision=precision, channels_last=parse_channels_last(channels_last))
    from wtc.trainer import evaluate_checkpoint

    res = evaluate_checkpoint(spec, checkpoint, cfg, widths=widths)
    if json_out:
        print_json(res)
    else:
        out.print(f"{checkpoint}: top-1 {100 * res['top1']:.2f}%  loss {res['loss']:.4f}  "
                  f"({res['images']} {res['data']} test images)")


def _print_trained(spec: Path, res: Any, json_out: bool) -> None:
    if json_out:
        print_json(res.summary)
        return
    s = res.summary
    top1 = f"{100 * s['top1']:.2f}%" if s.get("top1") is not None else "n/a"
    layout = ", channels_last" if s.get("channels_last") else ""
    out.print(f"[bold]{spec.stem}[/bold] trained {s['epochs']} epochs on {s['data']}: "
              f"test top-1 {top1}, {s['train_macs']:.3e} training MACs, "
              f"{s['seconds']:.1f} s ({s.get('precision', 'fp32')}{layout})")
    out.print(f"run directory: {res.out_dir}")


def _config(path: Path | None, **overrides: Any) -> Any:
    """Training options from --config with the command line's on top; the command-line
    numbers are checked first, so a bad one is blamed on its option."""
    from wtc.cli.common import option_bounds
    from wtc.trainer import TrainConfig

    bounds = option_bounds()
    check_options(**{k: v for k, v in overrides.items()
                     if k in bounds and not isinstance(v, list)})  # --classes is a list here

    if path is None and overrides.get("data") is None:
        from wtc.data import DATASETS

        raise ConfigError(f"name the dataset with --data ({', '.join(DATASETS.names())}) or "
                          "in a --config file")
    return TrainConfig.load(path, **overrides)
