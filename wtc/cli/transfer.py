"""`wtc transfer` (carry widths from the proxy to the target) and `wtc proxy` (make the proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from wtc.cli.common import check_options, err, esc, handle_errors, out, print_json
from wtc.cli.costs import budget_line, read_cost, refuse_time_as_macs
from wtc.cli.params import Commands, CostOpt, JsonOpt, ResolutionOpt


def parse_stage_map(value: str | None) -> dict[str, str] | None:
    """'layer1=stage1,layer2=stage2' → {'layer1': 'stage1', 'layer2': 'stage2'}."""
    from wtc.errors import ConfigError

    if value is None or not value.strip():
        return None
    pairs: dict[str, str] = {}
    for item in value.split(","):
        target, sep, source = (part.strip() for part in item.partition("="))
        if not sep or not target or not source:
            raise ConfigError(f"cannot read stage map entry '{item.strip()}' in '{value}': "
                              "write target=source pairs separated by commas, e.g. "
                              "layer1=stage1,layer2=stage2")
        if target in pairs:
            raise ConfigError(f"stage map names target stage '{target}' twice")
        pairs[target] = source
    return pairs


def parse_depths(value: str | None) -> list[int] | None:
    from wtc.errors import ConfigError

    if value is None:
        return None
    try:
        depths = [int(v) for v in value.split(",")]
    except ValueError:
        raise ConfigError(f"cannot read --depths '{value}': give one whole number per stage, "
                          "e.g. 1,1,2") from None
    if any(d < 1 for d in depths):
        raise ConfigError(f"--depths '{value}': every stage needs at least one block")
    return depths


def _fmt_ratio(r: float) -> str:
    return f"{r:.3f}"


app = Commands()


@app.command("transfer")
@handle_errors
def transfer_cmd(
    widths: Annotated[Path, typer.Argument(help="widths.json found on the source (proxy)",
                                           show_default=False)],
    target: Annotated[Path, typer.Argument(help="target spec (YAML)", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o",
                                         help="where to write the target's widths.json",
                                         show_default=False)],
    source: Annotated[Path | None, typer.Option(
        "--source", "-s", help="the spec the widths were made for (default: the spec with "
        "the recorded hash next to WIDTHS or in specs/)")] = None,
    stacking: Annotated[str, typer.Option(
        "--stacking", help="depth rule: last | average | interpolate")] = "last",
    stage_map: Annotated[str | None, typer.Option(
        "--stage-map", help="target=source stage pairs, e.g. layer1=stage1,layer2=stage2 "
        "(needed when the stage counts differ)")] = None,
    target_macs: Annotated[str | None, typer.Option(
        "--target-macs", "--target", help="budget of the target: 1.0x (its base MACs, the "
        "default), 0.5x, 41M or 4.1e7; with a latency --cost a time (3ms, 250us)")] = None,
    cost: CostOpt = None,
    keep_unmatched: Annotated[bool, typer.Option(
        "--keep-unmatched", help="keep target groups with no counterpart at ratio 1 "
        "instead of failing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Carry widths optimized on a proxy onto a target spec of the same family."""
    from wtc.widths import MacsTarget, save_widths
    from wtc.widthtransfer import locate_source, transfer_files

    src = locate_source(widths, source)  # widths and source errors first, then the target
    model = read_cost(cost)
    if model is None:
        refuse_time_as_macs([target_macs] if target_macs else [])
        budget = (MacsTarget.parse(target_macs, "--target-macs") if target_macs is not None
                  else None)
    else:
        from wtc.graph import compile_spec
        from wtc.graph.costmodel import parse_target
        from wtc.spec import load_spec

        tgt = compile_spec(load_spec(target))
        model.check(tgt)
        budget = None if target_macs is None else parse_target(tgt, target_macs, model)
    result, _ = transfer_files(widths, target, source=src, stacking=stacking,
                               stage_map=parse_stage_map(stage_map), target_macs=budget,
                               keep_unmatched=keep_unmatched, cost=model)
    save_widths(result.widths, output)
    _print_transfer(result, src, target, output, as_json, model)


@app.command("proxy")
@handle_errors
def proxy_cmd(
    spec: Annotated[Path, typer.Argument(help="the target spec (YAML)", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the proxy "
                                         "spec (YAML)", show_default=False)],
    width: Annotated[float | None, typer.Option(
        "--width", help="width multiplier, e.g. 0.5")] = None,
    depth: Annotated[float | None, typer.Option(
        "--depth", help="depth multiplier (ceil, at least one block per stage)")] = None,
    depths: Annotated[str | None, typer.Option(
        "--depths", help="exact blocks per stage, e.g. 1,1,1")] = None,
    resolution: ResolutionOpt = None,
    classes: Annotated[int | None, typer.Option("--classes", help="number of classes")
                       ] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="name of the proxy spec (default: <spec>_proxy)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a cheap proxy of a spec: narrower, shallower, smaller images."""
    from wtc.atomic import atomic_write_text
    from wtc.errors import ConfigError
    from wtc.graph import compile_spec, count_macs
    from wtc.spec import load_spec
    from wtc.spec.load import dump_spec, parse_spec
    from wtc.widthtransfer import project_spec, width_effect

    check_options(width=width, depth=depth, resolution=resolution, classes=classes)
    original = load_spec(spec)
    how = {"width": width, "depth": depth, "depths": parse_depths(depths),
           "resolution": resolution, "classes": classes}
    given = {k: v for k, v in how.items() if v is not None}
    if not given:
        raise ConfigError("nothing to project: give --width, --depth, --depths, "
                          "--resolution or --classes")
    proxy = project_spec(original, **how, name=name or f"{original.name}_proxy")
    text = dump_spec(proxy)
    if parse_spec(text) != proxy:  # a bug, not the user's input
        raise RuntimeError("the projected spec does not load back equal; not written")
    graph = compile_spec(proxy)
    macs, base = count_macs(graph), count_macs(compile_spec(original))
    settings = ", ".join(f"{k} {','.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in given.items())
    header = (f"# {proxy.name}: projected by `wtc proxy` from {spec} ('{original.name}', "
              f"hash {original.structural_hash})\n# with {settings}.\n"
              f"# {macs:,} MACs at base widths ({macs / base:.3f}x of the original); "
              f"hash {proxy.structural_hash}\n")
    atomic_write_text(output, header + text)
    effect = width_effect(original, width) if width is not None else None
    if effect is not None and effect.weak:
        shown = "; ".join(effect.absolute[:6]) + (
            f"; and {len(effect.absolute) - 6} more" if len(effect.absolute) > 6 else "")
        err.print(f"[yellow]warning:[/yellow] --width {width} keeps {effect.ratio:.3f}x of the "
                  f"MACs (a multiplier of {width} should give about {effect.expected:.3f}x): "
                  f"absolute channel counts do not scale: {shown or 'none found in outs'}; "
                  "write them as expressions of `width` or `in_channels`", soft_wrap=True)
    if as_json:
        print_json({"spec": proxy.name, "hash": proxy.structural_hash, "macs": macs,
                    "source": {"file": str(spec), "name": original.name,
                               "hash": original.structural_hash, "macs": base},
                    "projection": given, "output": str(output)})
        return
    out.print(f"[green]wrote[/green] {esc(output)}: '{esc(proxy.name)}' ({settings}), "
              f"{macs:,} MACs ({macs / base:.3f}x of '{original.name}'), "
              f"depths {[s.depth for s in proxy.stages]}, hash {proxy.structural_hash}")


def _print_transfer(result: Any, src: Any, target: Path, output: Path, as_json: bool,
                    model: Any = None) -> None:
    result_widths, src_graph, source = result.widths, src.graph, src.path
    tgt_name = result_widths.spec_name
    if as_json:
        report = result.to_json()
        report["source"] = result_widths.provenance["source"]
        report["target"]["file"] = str(target)
        report["output"] = str(output)
        print_json(report)
        return
    how = " (found by its hash)" if src.found else ""
    out.print(f"transfer [bold]{esc(src_graph.spec.name)}[/bold] ({esc(source)}{how}) → "
              f"[bold]{esc(tgt_name)}[/bold] ({esc(target)}), stacking "
              f"'{result.stacking}'")
    moved = [f"{t}←{s}" for t, s in result.stage_map.items() if t != s]
    if moved:
        out.print("stage map: " + ", ".join(moved))
    t = Table(title=f"{esc(tgt_name)}: width groups")
    for col in ("group", "kind", "source group(s)", "ratio", "base", "width"):
        t.add_column(col, justify="right" if col in ("ratio", "base", "width") else "left")
    for m in result.mapping.values():
        srcs = ", ".join(m.sources) if m.sources else "[red]none[/red]"
        if m.missing:
            srcs += f" [red](no {', '.join(m.missing)})[/red]"
        t.add_row(m.group, m.kind, srcs, _fmt_ratio(m.ratio), str(m.base), str(m.width))
    out.print(t)
    if result.cost_model is not None:
        out.print(f"{budget_line(result.cost_model, model)}, {result.macs:,} MACs, "
                  f"α = {result.alpha:.4f}")
    else:
        gap = (result.macs - result.target_macs) / result.target_macs
        out.print(f"MACs {result.macs:,} against a budget of {result.target_macs:,} "
                  f"({gap:+.2%}), α = {result.alpha:.4f}")
    if result.unmatched:
        out.print(f"[yellow]unmatched[/yellow] (kept at the ratio of their matched layers, "
                  f"1 if none): {', '.join(result.unmatched)}")
    out.print(f"[green]wrote[/green] {output}")
