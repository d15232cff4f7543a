"""`wtc plot`: draw widths files of one spec as ratios to its base widths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wtc.cli.common import handle_errors, out
from wtc.cli.params import Commands, SpecArg

app = Commands()


@app.command("plot")
@handle_errors
def plot_cmd(
    spec: SpecArg,
    widths: Annotated[list[Path], typer.Argument(help="one or more widths.json of SPEC",
                                                 show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="picture to write (.png, "
                                         ".pdf, .svg)")] = Path("widths.png"),
) -> None:
    """Bars of width / base width per group, one colour per widths file."""
    from wtc.errors import ConfigError
    from wtc.graph import compile_spec
    from wtc.plot import plot_widths
    from wtc.spec import load_spec
    from wtc.widths import load_widths

    if output.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"--output {output}: give a .png, .pdf or .svg file name")
    graph = compile_spec(load_spec(spec))
    loaded = [load_widths(w, graph) for w in widths]
    path = plot_widths(graph, loaded, [w.stem for w in widths], output)
    out.print(f"wrote {path} ({len(loaded)} widths file(s), {len(graph.free_groups)} groups)")
