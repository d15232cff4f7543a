"""`wtc profile`: measure a spec's per-layer latency table for a runtime (`wtc.profile`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from wtc.cli.common import handle_errors, out, print_json
from wtc.cli.params import Commands, JsonOpt, SpecArg

app = Commands()


@app.command("profile")
@handle_errors
def profile_cmd(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="latency table to write "
                                         "(JSON)", show_default=False)],
    runtime: Annotated[str, typer.Option("--runtime", help="what runs the layers: {runtimes}")
                       ] = "torch-cpu",
    threads: Annotated[int, typer.Option("--threads", help="intra-op threads")] = 1,
    batch: Annotated[int, typer.Option("--batch", help="images per forward pass")] = 1,
    points: Annotated[int, typer.Option(
        "--points", help="grid points per channel axis (plus the base widths)")] = 5,
    max_multiplier: Annotated[float, typer.Option(
        "--max-multiplier", help="the grid reaches this multiple of each base width")] = 2.0,
    repeats: Annotated[int, typer.Option("--repeats", help="timed samples per point")] = 7,
    statistic: Annotated[str, typer.Option(
        "--statistic", help="what the table prices with: median (of the samples) | min (the "
        "best sample: steadier on a machine other processes load); both are recorded")
    ] = "median",
    as_json: JsonOpt = False,
) -> None:
    """Time every distinct layer of SPEC over a grid of channel counts; write the table that
    `--cost latency:TABLE` reads (search, transfer, show)."""
    from wtc.errors import ConfigError

    if not output.parent.exists():
        raise ConfigError(f"cannot write {output}: folder {output.parent} does not exist")
    if output.is_dir():
        raise ConfigError(f"--output {output} is a folder; give a file name")
    for name, v, lo, hi in (("threads", threads, 1, 1024), ("batch", batch, 1, 4096),
                            ("points", points, 2, 32), ("repeats", repeats, 3, 1000)):
        if not lo <= v <= hi:
            raise ConfigError(f"--{name} must be between {lo} and {hi}, got {v}")
    if statistic not in ("median", "min"):
        raise ConfigError(f"--statistic must be median or min, not '{statistic}'")
    if not 1.0 <= max_multiplier <= 8.0:
        raise ConfigError(f"--max-multiplier must be between 1 and 8, got {max_multiplier:g}")
    from wtc.atomic import atomic_write_text
    from wtc.graph import compile_spec
    from wtc.profile import get_runtime, plan_layers, profile_spec
    from wtc.profile.table import FIT_ROUNDS
    from wtc.spec import load_spec
    from wtc.trainer.progress import Progress

    graph = compile_spec(load_spec(spec))
    get_runtime(runtime)  # refuse a runtime this machine cannot run before timing anything
    total = len(plan_layers(graph, points, max_multiplier, runtime)) + FIT_ROUNDS
    with Progress("rich" if sys.stdout.isatty() and not as_json else "none", True) as bar:
        bar.start(f"profiling '{graph.spec.name}' on {runtime}", total=total)
        table = profile_spec(graph, runtime=runtime, threads=threads, batch=batch,
                             points=points, max_multiplier=max_multiplier, repeats=repeats,
                             statistic=statistic, progress=lambda done, n, what: bar.advance(what))
    atomic_write_text(output, json.dumps(table, indent=1) + "\n")
    summary = {"output": str(output), "spec": graph.spec.name, "runtime": runtime,
               "threads": threads, "batch": batch, "layers": len(table["layers"]),
               "points": sum(_count(x["grid"]) for x in table["layers"]),
               "overhead_s": table["overhead_s"], "seconds": table["seconds"]}
    if as_json:
        print_json(summary)
        return
    out.print(f"[green]wrote[/green] {output}: {summary['layers']} layer configurations of "
              f"'{graph.spec.name}', {summary['points']} timed points on {runtime} "
              f"({threads} thread{'s' if threads > 1 else ''}, batch {batch}), overhead "
              f"{table['overhead_s'] * 1e3:.3f} ms per network, {table['seconds']:.1f} s")


def _count(grid: list[list[int]]) -> int:
    n = 1
    for ax in grid:
        n *= len(ax)
    return n
