"""`wtc validate`, `wtc show`, `wtc flops`: look at a spec and its widths without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wtc.cli.common import check_options, err, esc, handle_errors, out, print_json
from wtc.cli.params import Commands, JsonOpt, ResolutionOpt, SpecArg, WidthsOpt

ShowCostOpt = Annotated[str | None, typer.Option(
    "--cost", help="also show this cost per stage: {costs} (a latency table's is predicted)")]


def load(spec_path: Path, widths_path: Path | None):
    """Spec → graph and its widths (base widths when no file is given)."""
    from wtc.spec import load_spec

    spec = load_spec(spec_path)  # before the graph layer is imported: bad files answer sooner
    from wtc.graph import compile_spec
    from wtc.widths import base_widths, load_widths

    graph = compile_spec(spec)
    widths = load_widths(widths_path, graph) if widths_path else base_widths(graph)
    if widths.stale_macs:
        err.print(f"[yellow]warning:[/yellow] {widths_path}: {widths.stale_macs}", soft_wrap=True)
    return graph, widths


app = Commands()


@app.command("validate")
@handle_errors
def validate_cmd(spec: SpecArg, max_memory: Annotated[str | None, typer.Option(
        "--max-memory", help="refuse a model whose estimated memory is larger, e.g. "
        "8G (default: WTC_MAX_MEMORY, else half the RAM)")] = None) -> None:
    """Check a spec: YAML, schema, blocks, wiring, channels, shapes and the memory the
    built model would need."""
    from wtc.limits import human_bytes, parse_bytes

    limit = parse_bytes(max_memory) if max_memory else None
    graph, widths = load(spec, None)
    from wtc.graph import check_memory

    est = check_memory(graph, limit=limit)
    n = len(graph.spec.stages)
    out.print(f"[green]ok[/green] {esc(spec)}: '{esc(graph.spec.name)}', {n} stages, "
              f"{len(graph.free_groups)} width groups, {widths.macs:,} MACs, "
              f"about {human_bytes(est['total'])} to build, hash {graph.spec_hash}")

@app.command("show")
@handle_errors
def show_cmd(spec: SpecArg, widths: WidthsOpt = None, as_json: JsonOpt = False,
             cost: ShowCostOpt = None) -> None:
    """Stages, blocks, width groups, widths, MACs and parameters per stage."""
    from wtc.cli.costs import read_cost, with_cost
    from wtc.graph import cost_table
    from wtc.widths import summary

    graph, w = load(spec, widths)
    model = read_cost(cost)
    total, stages = summary(graph, w.groups), cost_table(graph, w.groups)
    if model is not None:
        total, stages = with_cost(graph, w.groups, model, total, stages)
    groups = [{"id": g.id, "kind": g.kind, "stage": g.stage, "base": g.base,
               "width": w.groups.get(g.id, g.base), "roles": list(g.roles),
               "layers": len(g.producers), "multiple": g.multiple}
              for g in graph.groups.values()]
    if as_json:
        print_json({**total, "hash": graph.spec_hash, "stages": stages, "groups": groups})
        return
    info = {s.name: s for s in graph.stages}
    t = Table(title=f"{esc(graph.spec.name)}  ({esc(spec)})")
    extra = (model.name,) if model is not None else ()
    for col in ("stage", "block", "depth", "out size", "MACs", "params", *extra):
        t.add_column(col, justify="left" if col in ("stage", "block") else "right")
    for row in stages:
        s = info[row["stage"]]
        size = f"{s.out_hw[0]}x{s.out_hw[1]}" if s.out_hw else "flat"
        t.add_row(row["stage"], s.block, str(s.depth), size, f"{row['macs']:,}",
                  f"{row['params']:,}", *((model.format(row["cost"]),) if extra else ()))
    if extra and total["cost"]["overhead"]:
        t.add_row("overhead", "", "", "", "", "", model.format(total["cost"]["overhead"]))
    t.add_row("total", "", "", "", f"{total['macs']:,}", f"{total['params']:,}",
              *((model.format(total["cost"]["total"]),) if extra else ()), style="bold")
    out.print(t)
    out.print(_groups_table(groups))

@app.command("flops")
@handle_errors
def flops_cmd(spec: SpecArg, widths: WidthsOpt = None, resolution: ResolutionOpt = None,
              as_json: JsonOpt = False) -> None:
    """MACs (multiply-accumulates; FLOPs = 2 x MACs) and parameters."""
    from wtc.graph import compile_spec
    from wtc.widths import summary

    check_options(resolution=resolution)
    graph, w = load(spec, widths)  # widths are checked against the spec they were made for
    if resolution is not None:
        graph = compile_spec(graph.spec.scaled(resolution=resolution))
    total = summary(graph, w.groups)
    if as_json:
        print_json(total)
        return
    out.print(f"{total['spec']} at {total['resolution']} px: [bold]{total['macs']:,}[/bold] "
              f"MACs ({total['macs'] / 1e6:.2f} M; {total['flops']:,} FLOPs = 2 x MACs), "
              f"{total['params']:,} parameters")



def _groups_table(groups: list[dict]) -> Table:
    """The width groups of `wtc show`; a "multiple of" column when grouped convolutions or
    shuffles constrain some group."""
    g = Table(title="width groups")
    multiples = any(row["multiple"] > 1 for row in groups)
    cols = ("group", "kind", "roles", "layers", *(("multiple of",) if multiples else ()),
            "base", "width")
    for col in cols:
        g.add_column(col, justify="left" if col in ("group", "kind", "roles") else "right")
    for row in groups:
        changed = row["width"] != row["base"]
        g.add_row(row["id"], row["kind"], "+".join(row["roles"]), str(row["layers"]),
                  *((str(row["multiple"]),) if multiples else ()),
                  str(row["base"]), f"[bold]{row['width']}[/bold]" if changed
                  else str(row["width"]))
    return g
