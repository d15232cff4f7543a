"""`wtc export`: a spec at its widths (and trained weights) to a verified ONNX file.

A thin wrapper over `wtc.export.export_onnx`; torch is imported inside the command so the
other commands start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wtc.cli.common import check_options, handle_errors, out, print_json
from wtc.cli.params import Commands, JsonOpt, ResolutionOpt, SpecArg


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"  # pragma: no cover


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


app = Commands()


@app.command("export")
@handle_errors
def export_cmd(
    spec: SpecArg,
    onnx_out: Annotated[Path, typer.Option(
        "--onnx", help="output .onnx file (written only once verified)")],
    widths: Annotated[Path | None, typer.Option(
        "--widths", "-w", help="widths.json (default: the checkpoint's widths, else the "
        "spec's own)")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", "-k", help="weights: a `wtc train` checkpoint.pt or a bare "
        "state_dict (default: freshly initialised)")] = None,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version")] = 17,
    dynamic_batch: Annotated[bool, typer.Option(
        "--dynamic-batch", help="symbolic batch dimension")] = False,
    resolution: ResolutionOpt = None,
    exporter: Annotated[str, typer.Option(
        "--exporter", help="auto | torchscript | dynamo")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Export SPEC to ONNX, checked by onnx.checker and against torch in onnxruntime.

    The file appears only if all of that passes."""
    from wtc.export import export_onnx
    from wtc.graph import compile_spec
    from wtc.spec import load_spec

    check_options(resolution=resolution)
    graph = compile_spec(load_spec(spec))
    rep = export_onnx(graph, widths, onnx_out, checkpoint=checkpoint, opset=opset,
                      dynamic_batch=dynamic_batch, resolution=resolution,
                      exporter=exporter)  # type: ignore[arg-type]
    if json_out:
        print_json(rep.to_json())
        return
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    weights = rep.checkpoint or "freshly initialised (no --checkpoint)"
    shape = lambda s: "x".join(str(d) for d in s)  # noqa: E731
    rows = [
        ("spec", f"{rep.spec} ({rep.spec_hash}), {rep.resolution}px, {rep.classes} classes"),
        ("widths", rep.widths_source),
        ("weights", weights),
        ("input", f"{shape(rep.input_shape)} -> {shape(rep.output_shape)}"),
        ("MACs", f"{_count(rep.macs)} ({rep.macs:,})"),
        ("params", f"{_count(rep.params)} ({rep.params:,})"),
        ("file", f"{_size(rep.file_bytes)}, opset {rep.opset}, {rep.exporter} exporter"),
        ("onnxruntime", f"max |diff| {rep.max_abs_diff:.3g} at output scale "
                        f"{rep.output_scale:.3g} (relative {rep.rel_diff:.2g}), batches "
                        f"{', '.join(map(str, rep.verified_batches))}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    out.print(f"[green]wrote[/green] {rep.path} [dim]({rep.seconds:.1f} s)[/dim]")
    out.print(t)
    for note in rep.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
