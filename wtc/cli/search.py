"""`wtc search`: find the widths of a spec at a MACs target; a thin wrapper over `wtc.search`.

Everything (spec, method, settings, target, data, output folder) is validated before any
training starts; torch is imported only when a method trains.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from wtc.cli.common import (
    check_options,
    esc,
    handle_errors,
    out,
    parse_channels_last,
    print_json,
)
from wtc.cli.costs import budget_line, read_targets, targets_text
from wtc.cli.params import (
    BatchOpt,
    ChannelsLastOpt,
    Commands,
    CostOpt,
    DataOpt,
    DataRootOpt,
    DeviceOpt,
    EpochsOpt,
    FractionOpt,
    JsonOpt,
    PrecisionOpt,
    SeedOpt,
)
from wtc.errors import ConfigError

if TYPE_CHECKING:
    from wtc.graph import StageGraph
    from wtc.graph.costmodel import CostModel
    from wtc.optimizers import SearchResult
    from wtc.widths import Widths

DEFAULT_SPEC = Path("specs") / "resnet20_fmnist.yaml"
DEFAULT_FRACTION = 0.2  # the search is a proxy: a share of the training images is enough

app = Commands()


def resolve_spec(spec: Path | None) -> Path:
    """The spec path as given, else relative to the wtc checkout; the default is
    specs/resnet20_fmnist.yaml."""
    wanted = spec if spec is not None else DEFAULT_SPEC
    if wanted.is_file():
        return wanted
    repo = Path(__file__).resolve().parents[2]
    if not wanted.is_absolute() and (repo / wanted).is_file():
        return repo / wanted
    if spec is None:
        raise ConfigError(f"no SPEC given and the default {DEFAULT_SPEC} was found neither in "
                          f"the current folder nor in {repo}; pass a spec file, e.g. "
                          "`wtc search path/to/resnet20_fmnist.yaml`")
    raise ConfigError(f"spec file {spec} does not exist")


def read_settings(config: Path | None, sets: list[str] | None) -> dict[str, Any]:
    """Method settings from a YAML mapping, with `key=value` overrides (values read as YAML,
    through the same bounded reader; what does not read as YAML stays text)."""
    from wtc.safe_yaml import YamlError, load_yaml

    values: dict[str, Any] = {}
    if config is not None:
        from wtc.options import read_yaml_mapping

        values.update(read_yaml_mapping(config, "settings file",
                                        "a mapping of method settings (e.g. `strength: 2.0`)"))
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes key=value (e.g. --set strength=2), not '{item}'")
        try:
            value = load_yaml(raw)[0] if raw.strip() else None
        except YamlError:
            value = raw
        values[key.strip()] = _finite(value, f"--set {key.strip()}")
    return values


def _check_output(output: Path) -> None:
    if not output.parent.exists():
        raise ConfigError(f"cannot write {output}: folder {output.parent} does not exist")
    if output.is_dir():
        raise ConfigError(f"--output {output} is a folder; give a file name")


def _settings_source(config: Path | None, sets: list[str] | None) -> str | None:
    """Where the settings came from, for a message about a bad one."""
    where = ([str(config)] if config else []) + (["--set"] if sets else [])
    return " or ".join(where) or None


def _finite(value: Any, what: str) -> Any:
    """A --set value that reads as a number must be a finite one (`inf`, `nan` and `1e400` are
    text to YAML, but a float to the settings model)."""
    from wtc.numbers import NumberError, bounded

    if isinstance(value, str):
        try:
            bounded(value, what)
        except NumberError as e:
            if "expected a number" not in str(e):
                raise
    return value


TargetOpt = Annotated[str, typer.Option(
    "--target-macs", "--target", "-t", help="target: 0.5x (of the spec's), 41M MACs, 3ms with "
    "a latency --cost; autoslim takes several (0.25x,0.5x: one file each)")]


@app.command("search")
@handle_errors
def search_cmd(
    spec: Annotated[Path | None, typer.Argument(
        help=f"architecture spec (YAML); default {DEFAULT_SPEC}", show_default=False)] = None,
    method: Annotated[str, typer.Option("--method", "-m", help="search method: {methods}")
                      ] = "morphnet",
    target_macs: TargetOpt = "1.0x",
    cost: CostOpt = None,
    data: DataOpt = "fashion-mnist",
    data_root: DataRootOpt = None,
    epochs: EpochsOpt = None,
    fraction: FractionOpt = DEFAULT_FRACTION,
    batch_size: BatchOpt = None,
    val_split: Annotated[float | None, typer.Option(
        "--val-split", help="held-out share of the training images for the search's "
        "decisions and reported accuracy (default: the method's `held_out`, else 0.1)")
    ] = None,
    val_min: Annotated[int, typer.Option(
        "--val-min-per-class", help="floor on the held-out images per class, drawn "
        "outside the searched share (0: none)")] = 100,
    seed: SeedOpt = 0,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="method settings (YAML mapping)")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="a method setting, key=value (repeatable)")] = None,
    device: DeviceOpt = "auto",
    threads: Annotated[int | None, typer.Option(
        "--threads", help="torch's CPU threads (default: every core)")] = None,
    precision: PrecisionOpt = None,
    channels_last: ChannelsLastOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="widths file to write")
                      ] = Path("widths.json"),
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir", help="keep training checkpoints here, so --resume can continue")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="continue the interrupted search in --run-dir")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Search widths of SPEC at a MACs target; compare with uniform; write widths.json.

    Resume an interrupted search with --run-dir DIR --resume."""
    from wtc.graph import compile_spec
    from wtc.optimizers import request as sb
    from wtc.spec import load_spec

    check_options(epochs=epochs, fraction=fraction, batch_size=batch_size, val_split=val_split,
                  seed=seed, threads=threads, val_min_per_class=val_min)
    path = resolve_spec(spec)
    graph = compile_spec(load_spec(path))
    labels = [t.strip() for t in target_macs.split(",") if t.strip()] or [target_macs]
    model, targets = read_targets(graph, labels, cost)
    _check_output(output)
    data_cfg = _data_cfg(method, data, data_root, batch_size, val_split, val_min)
    opt, ctx, cfg = sb.prepare(graph, sb.SearchRequest(
        method, targets if len(targets) > 1 else targets[0], read_settings(config, sets),
        data_cfg, seed or 0, epochs=epochs, fraction=fraction, device=device or "auto",
        threads=threads, progress="none" if json_out else "auto",
        settings_source=_settings_source(config, sets), run_dir=run_dir, resume=resume,
        precision=precision or "auto", channels_last=_auto(parse_channels_last(channels_last)),
        cost=model))
    if opt.needs_data:
        _start_training(threads, device or "auto", None if json_out else (
            f"[bold]{method}[/bold] search of '{esc(graph.spec.name)}' ({esc(path)}) on "
            f"{data} (fraction {fraction:g}), target {targets_text(targets, model)}"))
    _write(graph, sb.run_prepared(opt, ctx, cfg), output, labels, targets, json_out, model)


def _start_training(threads: int | None, device: str, line: str | None) -> None:
    """What the command does, as this process's entry point, before a search that trains: set
    torch's threads once, and say what it searches (unless the output is JSON)."""
    from wtc.trainer import set_process_threads

    set_process_threads(threads, device)
    if line is not None:
        out.print(line)


def _data_cfg(method: str, data: str, data_root: str | None, batch_size: int | None,
              val_split: float | None, val_min: int) -> dict[str, Any]:
    """The search's data mapping from the command-line options that were given (a 0 floor on
    the held-out images per class is none)."""
    if val_split is None:
        val_split = _default_val_split(method)
    given = (("data_root", data_root), ("batch_size", batch_size), ("val_split", val_split),
             ("val_min_per_class", val_min or None))
    return {"data": data, **{k: v for k, v in given if v is not None}}


def _default_val_split(method: str) -> float | None:
    """A held-out split for every search, so it can say what its widths score: a method with
    its own `held_out` share uses it, the others hold out 10% of the searched images."""
    from wtc.optimizers import OPTIMIZERS

    if method not in OPTIMIZERS:
        return None  # prepare() names the valid methods
    opt = OPTIMIZERS.get(method)
    if not opt.needs_data or "held_out" in opt.Settings.model_fields:
        return None
    return 0.1


def _auto(value: bool | str | None) -> bool | str:
    return "auto" if value is None else value


def _write(graph: StageGraph, result: SearchResult, output: Path, labels: list[str],
           targets: list[Any], json_out: bool, model: Any = None) -> None:
    """widths.json, or one file per target: widths.0.25x.json, widths.0.5x.json, ..."""
    if len(targets) == 1:
        result.save(output)
        _report(graph, result, output, json_out, model)
        return
    for label, t in zip(labels, targets, strict=True):
        one = replace(result, widths=result.per_target[t], target_macs=t,  # its own details
                      details={**result.details, **result.per_target_details.get(t, {})})
        dest = output.with_name(f"{output.stem}.{label}{output.suffix}")
        one.save(dest)
        _report(graph, one, dest, json_out, model)


def _report(graph: StageGraph, result: SearchResult, output: Path, json_out: bool,
            model: CostModel | None = None) -> None:
    from wtc.graph import count_macs
    from wtc.widths import uniform_widths

    uni = (result.widths if result.method == "uniform"
           else uniform_widths(graph, target_macs=result.target_macs, cost=model))
    found = result.widths
    if model is not None and not json_out:
        _report_cost(graph, result, uni, output, model)
        return
    if json_out:
        print_json({"output": str(output), "widths": found.to_json(),
                    "uniform": {"groups": uni.groups, "macs": uni.macs},
                    "train_macs": result.train_macs, "seconds": result.seconds,
                    "held_out_top1": result.held_out_top1,
                    "chance": 1 / graph.spec.classes})
        return
    t = _widths_table(graph, result, uni, f"{result.target_macs:,} MACs")
    base = count_macs(graph)
    t.add_row("MACs", f"{base:,}", f"{uni.macs:,}", f"{found.macs:,}",
              f"{found.macs / uni.macs:.3f}", style="bold")
    out.print(t)
    cost = (f"{result.train_macs:.3e} training MACs, " if result.train_macs else "")
    out.print(f"{result.method}: {found.macs:,} MACs ({found.macs / result.target_macs:.2%} of "
              f"the target), {cost}{result.seconds:.1f} s; wrote {output}")
    _print_held_out(graph, result, uni)


def _widths_table(graph: StageGraph, result: SearchResult, uni: Widths, at: str) -> Table:
    """Per free group: base, uniform and found widths, and found ÷ uniform (green above 1.05,
    red below 0.95)."""
    t = Table(title=f"{esc(graph.spec.name)}: {result.method} widths vs uniform at {at}")
    for col in ("group", "base", "uniform", result.method, "ratio"):
        t.add_column(col, justify="left" if col == "group" else "right")
    for g in graph.free_groups:
        u, w = uni.groups[g], result.widths.groups[g]
        ratio = w / u
        style = "green" if ratio > 1.05 else "red" if ratio < 0.95 else ""
        t.add_row(g, str(graph.groups[g].base), str(u), str(w),
                  f"[{style}]{ratio:.2f}[/{style}]" if style else f"{ratio:.2f}")
    return t


def _print_held_out(graph: StageGraph, result: SearchResult, uni: Widths) -> None:
    """Whether the search learned anything: its held-out top-1 beside chance, how its method
    chose (`Optimizer.notes`), and whether it returned uniform widths after all."""
    from wtc.optimizers import get_optimizer
    from wtc.optimizers.base import near_chance

    if result.method != "uniform":
        for line in get_optimizer(result.method).notes(graph, result.details):
            out.print(esc(line))
        if result.widths.groups == uni.groups:
            out.print("these are the uniform widths at this budget: the search moved no width")
    top1 = result.held_out_top1
    if top1 is None:
        return
    chance = 1 / graph.spec.classes
    verdict = ("[red]at or near chance: these widths carry little information; search "
               "longer or on more data[/red]" if near_chance(top1, chance) else "")
    out.print(f"held-out top-1 of these widths: {100 * top1:.2f}% (chance "
              f"{100 * chance:.0f}%) {verdict}".rstrip())


def _report_cost(graph: StageGraph, result: SearchResult, uni: Widths, output: Path,
                 model: CostModel) -> None:
    """The comparison with uniform under a cost model other than MACs: both its number and
    the MACs, per network."""
    found = result.widths
    t = _widths_table(graph, result, uni,
                      f"{model.format(result.target_macs)} ({model.label()})")
    costs = [model.cost(graph, None), model.cost(graph, uni.groups),
             model.cost(graph, found.groups)]
    t.add_row(model.name, *(model.format(c) for c in costs), f"{costs[2] / costs[1]:.3f}",
              style="bold")
    from wtc.graph import count_macs

    t.add_row("MACs", f"{count_macs(graph):,}", f"{uni.macs:,}", f"{found.macs:,}",
              f"{found.macs / uni.macs:.3f}")
    out.print(t)
    spent = (f", {result.train_macs:.3e} training MACs" if result.train_macs else "")
    out.print(f"{result.method}: {budget_line(found.provenance['cost_model'], model)}"
              f"{spent}, {result.seconds:.1f} s; wrote {output}")
    _print_held_out(graph, result, uni)
