"""ONNX export: a spec's network at given widths (and trained weights), verified before it lands.

`export_onnx` builds the module, optionally loads a checkpoint into it, exports it with
`torch.onnx`, checks the file with `onnx.checker` and runs it once in onnxruntime (CPU) against
the torch eval output. Only a file that passes all of that is moved into place: the export goes
to a temporary file in the target folder, which is renamed over the output path at the end, so
a failure at any step leaves no file behind (and an existing file at the path untouched).

Agreement is measured relative to the output scale:

    rel_diff = max|onnx - torch| / max(1, max|torch|)

and the export fails (ExportError) when `max|onnx - torch| > max(atol, rtol * max|torch|)`,
which with the defaults atol = rtol = 1e-4 is exactly `rel_diff > 1e-4`.

Exporter: the TorchScript exporter (`dynamo=False`) writes exactly the requested opset and is
10-20x faster than the torch.export-based one on these networks (0.2 s vs 3-8 s); the dynamo
exporter cannot write opsets below 18 (its down-conversion fails on these graphs and silently
keeps 18). `exporter="auto"` therefore uses TorchScript while torch still ships it and falls
back to dynamo otherwise; the report says which one ran and which opset the file has.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from wtc.atomic import atomic_path
from wtc.errors import ConfigError, ExportError
from wtc.graph import SpecLike, StageGraph, as_graph
from wtc.widths import Widths, WidthsLike, as_widths

# export_onnx's widths (`WidthsLike`): a Widths, a group -> channels mapping, a widths file, or
# None (the checkpoint's own widths, else the spec's base widths)

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
MIN_OPSET = 11

Exporter = Literal["auto", "torchscript", "dynamo"]
# which exporters each choice tries, in order
EXPORTERS = {"auto": ("torchscript", "dynamo"), "torchscript": ("torchscript",),
             "dynamo": ("dynamo",)}


@dataclass
class ExportReport:
    """What was written and how well it agrees with torch."""

    path: str
    spec: str
    spec_hash: str
    resolution: int
    classes: int
    macs: int
    params: int
    file_bytes: int
    opset: int
    exporter: str
    input_shape: list[int | str]
    output_shape: list[int | str]
    dynamic_batch: bool
    max_abs_diff: float
    output_scale: float
    rel_diff: float
    atol: float
    rtol: float
    verified_batches: list[int]
    widths: dict[str, int]
    widths_source: str
    checkpoint: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- inputs


def _resolve_widths(graph: StageGraph, widths: WidthsLike, ckpt: Mapping[str, Any] | None,
                    hashes: tuple[str, ...]) -> tuple[dict[str, int], str]:
    """Free-group channels for `graph` and where they came from."""
    from wtc.widths import check_widths

    if widths is None:
        saved = ckpt.get("widths") if ckpt is not None else None
        if isinstance(saved, Mapping) and (ckpt or {}).get("spec_hash") in (None, *hashes):
            return check_widths(graph, dict(saved), "the checkpoint's widths"), "checkpoint"
        return {g: graph.groups[g].base for g in graph.free_groups}, "base"
    source = (str(widths) if isinstance(widths, str | Path) else
              "widths" if isinstance(widths, Widths) else "mapping")
    return dict(as_widths(graph, widths).groups), source


def _check_output_path(path: Path) -> None:
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"cannot write {path}: it is a folder")
    if not folder.exists():
        raise ConfigError(f"cannot write {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {path}: folder {folder} is not writable")


def _check_options(opset: int, atol: float, rtol: float, batch_size: int,
                   exporter: str) -> None:
    import onnx

    if exporter not in EXPORTERS:
        raise ConfigError(f"unknown exporter '{exporter}': choose one of {', '.join(EXPORTERS)}")
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ConfigError(f"opset {opset} is not supported: choose one from {MIN_OPSET} to "
                          f"{newest} (the newest the installed onnx knows)")
    if not (atol >= 0 and rtol >= 0):
        raise ConfigError(f"tolerances must be non-negative (atol={atol}, rtol={rtol})")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")


# --------------------------------------------------------------------------- export


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' deprecation warnings, progress prints and log lines."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path, opset: int,
                        dynamic: bool) -> None:
    axes = {INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}} if dynamic else None
    torch.onnx.export(model, (x,), str(path), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                      dynamic_axes=axes, do_constant_folding=True)


def _export_dynamo(model: torch.nn.Module, x: torch.Tensor, path: Path, opset: int,
                   dynamic: bool) -> None:
    shapes = ({0: torch.export.Dim(BATCH_DIM, min=1)},) if dynamic else None
    torch.onnx.export(model, (x,), str(path), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], opset_version=opset, dynamo=True,
                      dynamic_shapes=shapes, external_data=False, verbose=False)


def _export(model: torch.nn.Module, x: torch.Tensor, path: Path, opset: int, dynamic: bool,
            exporter: str) -> str:
    """Write the ONNX file with the chosen exporter; returns the name of the one that ran."""
    order = EXPORTERS[exporter]
    funcs = {"torchscript": _export_torchscript, "dynamo": _export_dynamo}
    failures = []
    for name in order:
        try:
            with _quiet(), torch.no_grad():
                funcs[name](model, x, path, opset, dynamic)
            return name
        except Exception as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
            failures.append(f"{name} exporter: {type(e).__name__}: {reason[:300]}")
    raise ExportError(f"torch.onnx could not export the model ({'; '.join(failures)})")


def _shape(value_info: Any) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_param if d.dim_param else int(d.dim_value) for d in dims]


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def _compare(sess: Any, model: torch.nn.Module, batches: list[int], c: int, r: int,
             gen: torch.Generator) -> tuple[float, float]:
    """(max |onnx - torch|, max |torch|) over one random batch of each size."""
    max_diff, scale = 0.0, 0.0
    for b in batches:
        x = torch.randn(b, c, r, r, generator=gen)
        with torch.no_grad():
            ref = model(x).float().numpy()
        try:
            got = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        except Exception as e:
            raise ExportError(f"onnxruntime failed to run the exported model on a batch of "
                              f"{b}: {e}") from None
        if got.shape != ref.shape:
            raise ExportError(f"onnxruntime output has shape {tuple(got.shape)}, torch "
                              f"{tuple(ref.shape)} (batch {b})")
        diff = float(abs(got.astype("float64") - ref).max()) if ref.size else 0.0
        if diff != diff:  # NaN
            raise ExportError(f"onnxruntime output differs from torch by NaN (batch {b})")
        max_diff = max(max_diff, diff)
        scale = max(scale, float(abs(ref).max()) if ref.size else 0.0)
    return max_diff, scale


@dataclass(frozen=True)
class _Written:
    """What `_write_verified` wrote and measured."""

    exporter: str  # the exporter that produced the file
    opset: int  # the opset the file declares
    input_shape: list[int | str]
    output_shape: list[int | str]
    max_diff: float
    scale: float
    rel: float


def _write_verified(model: torch.nn.Module, example: torch.Tensor, out: Path,
                    batches: list[int], gen: torch.Generator, *, opset: int, dynamic: bool,
                    exporter: Exporter, atol: float, rtol: float) -> _Written:
    """Export to a temporary file next to `out` (`wtc.atomic.atomic_path`), check it with
    onnx.checker, compare it with torch in onnxruntime, and only then rename it over `out` (a
    failure leaves no file)."""
    import onnx

    c, r = example.shape[1], example.shape[-1]
    with atomic_path(out) as tmp:
        used = _export(model, example, tmp, opset, dynamic, exporter)
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
            proto = onnx.load(str(tmp), load_external_data=False)
        except Exception as e:
            raise ExportError(f"the exported model fails onnx.checker: {e}") from None
        opset_written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                             opset)
        in_shape, out_shape = _shape(proto.graph.input[0]), _shape(proto.graph.output[0])
        del proto
        try:
            sess = _session(tmp)
        except Exception as e:
            raise ExportError(f"onnxruntime cannot load the exported model: {e}") from None
        max_diff, scale = _compare(sess, model, batches, c, r, gen)
        del sess
        rel = max_diff / max(1.0, scale)
        if max_diff > max(atol, rtol * scale):
            raise ExportError(f"onnxruntime output differs from torch by {max_diff:.3g} "
                              f"(output scale {scale:.3g}, relative {rel:.3g}); allowed "
                              f"max(atol={atol:g}, rtol={rtol:g} x scale)")
    return _Written(used, opset_written, in_shape, out_shape, max_diff, scale, rel)


def export_onnx(graph: SpecLike, widths: WidthsLike = None, path: str | Path = "model.onnx", *,
                checkpoint: str | Path | None = None, opset: int = 17,
                dynamic_batch: bool = False, resolution: int | None = None,
                batch_size: int = 1, atol: float = 1e-4, rtol: float = 1e-4,
                exporter: Exporter = "auto", seed: int = 0) -> ExportReport:
    """Export `graph` at `widths` (with `checkpoint`'s weights) to a verified ONNX file.

    graph: a StageGraph (or a Spec, or a spec path). widths: Widths, a group -> channels
    mapping, a widths-file path, or None: the checkpoint's own widths when it records them,
    else the spec's base widths. checkpoint: a `wtc train` checkpoint or a bare state_dict;
    without one the freshly initialised weights are exported. resolution: export at another
    input resolution (the same groups, so the same widths and weights apply). batch_size: the
    batch dimension of a static export (and of the traced example). dynamic_batch: a symbolic
    batch dimension named "batch", verified at two batch sizes.

    Raises ConfigError (bad options, unwritable path), WidthsError, CheckpointError,
    SpecError/GraphError (a resolution the network cannot take), ExportError (the exporter,
    onnx.checker or the onnxruntime comparison failed). On any error no file is written.
    """
    from wtc.graph import compile_spec, count_macs, count_params
    from wtc.nn.build import build_model
    from wtc.nn.weights import load_weights, read_checkpoint

    t0 = time.perf_counter()
    out = Path(path)
    _check_options(opset, atol, rtol, batch_size, exporter)
    _check_output_path(out)
    graph = as_graph(graph)
    target = graph
    if resolution is not None and resolution != graph.spec.input.resolution:
        if resolution < 1:
            raise ConfigError(f"resolution must be a positive number of pixels, got {resolution}")
        target = compile_spec(graph.spec.scaled(resolution=resolution))
    # a checkpoint trained at the spec's own resolution or at the export resolution fits
    hashes = (graph.spec_hash, target.spec_hash)
    ckpt = read_checkpoint(checkpoint) if checkpoint is not None else None
    groups, source = _resolve_widths(graph, widths, ckpt, hashes)

    model = build_model(target, groups, init=checkpoint is None)
    if ckpt is not None:
        load_weights(model, ckpt, checkpoint, spec_hashes=hashes)
    model.eval()

    spec = target.spec
    c, r = spec.input.channels, spec.input.resolution
    gen = torch.Generator().manual_seed(seed)
    trace_batch = max(2, batch_size) if dynamic_batch else batch_size
    batches = sorted({1, trace_batch + 1}) if dynamic_batch else [batch_size]
    example = torch.randn(trace_batch, c, r, r, generator=gen)

    w = _write_verified(model, example, out, batches, gen, opset=opset, dynamic=dynamic_batch,
                        exporter=exporter, atol=atol, rtol=rtol)

    notes = []
    if w.opset != opset:
        notes.append(f"opset {opset} was asked for but the {w.exporter} exporter wrote opset "
                     f"{w.opset}")
    return ExportReport(
        path=str(out), spec=spec.name, spec_hash=graph.spec_hash, resolution=r,
        classes=spec.classes, macs=int(count_macs(target, groups)),
        params=int(count_params(target, groups)), file_bytes=out.stat().st_size,
        opset=int(w.opset), exporter=w.exporter, input_shape=w.input_shape,
        output_shape=w.output_shape, dynamic_batch=dynamic_batch, max_abs_diff=w.max_diff,
        output_scale=w.scale, rel_diff=w.rel,
        atol=atol, rtol=rtol, verified_batches=batches, widths=dict(groups),
        widths_source=source, checkpoint=str(checkpoint) if checkpoint is not None else None,
        seconds=time.perf_counter() - t0, notes=notes)
