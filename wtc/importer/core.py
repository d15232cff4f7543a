"""`import_model`: a PyTorch module → an ordinary wtc spec and the weights of its built network.

trace (torch.fx + shapes) → segments (stem, stages of blocks, head) → one template per stage
→ YAML → the spec is validated like any file, compiled, built, loaded with the module's
weights and run on the example input: the import is returned only when the built network
gives the module's logits, so a spec that would compute something else is never written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from wtc.errors import WtcError
from wtc.importer.exported import export_ops
from wtc.importer.segments import Segment, Stage, segment, stages
from wtc.importer.templates import Built, Unaligned, assign_roles, build, common_base
from wtc.importer.trace import ImportFailure, Op, TraceFailure, trace
from wtc.spec.catalog import BLOCKS
from wtc.spec.load import parse_spec
from wtc.spec.schema import Spec


@dataclass(frozen=True)
class ImportedSpec:
    """The spec (and its YAML text), the built network's state_dict, where each wtc node
    came from (`sources`: node → module path), and how far its logits are from the module's
    on the example input."""

    spec: Spec
    yaml: str
    state_dict: dict[str, Tensor]
    sources: dict[str, str] = field(default_factory=dict)
    max_abs_diff: float = 0.0


TRACERS = ("auto", "fx", "export")


def import_model(module: nn.Module, example_input: Tensor, *, name: str = "imported",
                 source: str = "", tracer: str = "auto") -> ImportedSpec:
    """Import `module` (eval mode) traced on `example_input` (1, C, H, W; H = W).

    tracer: `fx` (torch.fx), `export` (torch.export), or `auto`: fx, and torch.export where
    fx cannot trace (a branch on a shape, say)."""
    if tracer not in TRACERS:
        raise ImportFailure(f"unknown tracer '{tracer}'; choose one of: {', '.join(TRACERS)}")
    if not isinstance(module, nn.Module):
        raise ImportFailure(f"expected a torch.nn.Module, got {type(module).__name__}")
    x = example_input
    if x.dim() != 4 or x.shape[2] != x.shape[3]:
        raise ImportFailure(f"the example input must be (N, C, H, H), got {tuple(x.shape)}")
    module = module.eval()
    ops = _ops(module, x, tracer)
    classes = ops[-1].channels
    stem, body, head = stages(segment(ops, module))
    asm = _Assembler(int(x.shape[1]), classes)
    data = asm.run(stem, body, head, name, int(x.shape[2]))
    text = _yaml(data, source)
    spec = parse_spec(text, source=f"<import of {source or name}>")
    diff = _verify(spec, asm.state, module, x)
    return ImportedSpec(spec, text, asm.state, asm.sources, diff)


def _ops(module: nn.Module, x: Tensor, tracer: str) -> list[Op]:
    if tracer == "export":
        return export_ops(module, x)
    try:
        return trace(module, x)[0]
    except TraceFailure as fx_failure:  # torch.export specialises what fx cannot trace
        if tracer == "fx":
            raise
        try:
            return export_ops(module, x)
        except ImportFailure as e:
            raise ImportFailure(f"{fx_failure}; {e}") from None


class _Assembler:
    def __init__(self, channels: int, classes: int) -> None:
        self.chan: dict[str, int] = {"input": channels}
        self.classes = classes
        self.templates: dict[str, dict[str, Any]] = {}
        self.state: dict[str, Tensor] = {}
        self.sources: dict[str, str] = {}

    def run(self, stem: list[Op], body: list[Stage], head: list[Op], name: str,
            resolution: int) -> dict[str, Any]:
        for op in (*stem, *(o for st in body for b in st.blocks for o in b.ops), *head):
            self.chan[op.name] = op.channels
        prev = "input"
        data: dict[str, Any] = {"name": name, "input": {"channels": self.chan["input"],
                                                        "resolution": resolution},
                                "classes": self.classes}
        if stem:
            data["stem"] = [self.call([stem], [prev], "stem", "stem", "stem", -1)]
            prev = stem[-1].name
        data["stages"] = []
        for st in body:
            for piece in self.stage_calls(st, prev, len(data["stages"])):
                data["stages"].append(piece)
            prev = st.blocks[-1].last
        data["head"] = [self.call([head], [prev], "head", "head", "head", -2)]
        data["templates"] = self.templates
        return data

    def stage_calls(self, st: Stage, prev: str, index: int) -> list[dict[str, Any]]:
        blocks = [b.ops for b in st.blocks]
        inputs = [prev] + [b.last for b in st.blocks[:-1]]
        try:
            return [self.call(blocks, inputs, st.name, st.cls or st.name, "stage", index,
                              [b.block or common_base(b.ops) for b in st.blocks])]
        except Unaligned:  # each block its own stage: exact, with less structure
            calls = []
            for k, (seg, src) in enumerate(zip(st.blocks, inputs, strict=True)):
                calls.append(self.call([seg.ops], [src], f"{st.name}_{k}",
                                       f"{st.cls or st.name}_{k}", "stage", index + k,
                                       [seg.block or common_base(seg.ops)]))
            return calls

    def call(self, blocks: list[list[Op]], inputs: list[str], stage: str, cls: str, part: str,
             index: int, bases: list[str] | None = None) -> dict[str, Any]:
        bases = bases or [common_base(blocks[0])]
        built = build(blocks, inputs, [self.chan[i] for i in inputs], bases,
                      head=part == "head", stage=part == "stage", classes=self.classes)
        tname = self.template_name(cls, stage, built)
        call: dict[str, Any] = {"block": tname}
        if part == "stage":
            call = {"name": stage, **call, "depth": len(blocks)}
        if built.width is not None:
            call["width"] = built.width
        if built.stride > 1:
            call["stride"] = built.stride
        call.update(built.params)
        self.collect(blocks, built, part, index, stage)
        return call

    def template_name(self, cls: str, stage: str, built: Built) -> str:
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in cls) or "block"
        base = f"t_{base}" if base[0].isdigit() else base
        if base in BLOCKS:
            base = f"{base}_imported"
        for name, template in self.templates.items():  # the same block again: share it
            if template == built.template and (name == base or name.startswith(f"{base}_")):
                return name
        candidates = [base, f"{base}_{stage}"] + [f"{base}_{stage}_{k}" for k in range(2, 99)]
        for name in candidates:
            if self.templates.get(name) in (None, built.template):
                self.templates[name] = built.template
                return name
        raise ImportFailure(f"too many different '{cls}' blocks")  # pragma: no cover

    def collect(self, blocks: list[list[Op]], built: Built, part: str, index: int,
                stage: str) -> None:
        for b, ops in enumerate(blocks):
            for op in ops:
                role = built.roles[b][op.name]
                prefix = (f"stages.{index}.blocks.{b}" if part == "stage" else f"{part}.0")
                node = f"{stage}.block{b}.{role}"
                self.sources[node] = op.path
                for key, value in op.weights.items():
                    self.state[f"{prefix}.{role}.{key}"] = value


def _yaml(data: dict[str, Any], source: str) -> str:
    header = (f"# {data['name']}: imported by `wtc import`{f' from {source}' if source else ''}"
              ".\n# An ordinary spec: edit it like any other (templates below).\n")
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def _verify(spec: Spec, state: dict[str, Tensor], module: nn.Module, x: Tensor) -> float:
    """The built network, loaded with the module's weights, must give the module's logits."""
    from wtc.graph import compile_spec
    from wtc.nn.build import build_model
    from wtc.nn.weights import load_state_checked

    model = build_model(compile_spec(spec), init=False).eval()
    load_state_checked(model, state, "the imported weights")
    with torch.no_grad():
        ref, got = module(x), model(x)
    diff = float((ref - got).abs().max())
    if not diff <= 1e-4 * max(1.0, float(ref.abs().max())):
        raise WtcError(f"the imported network's logits differ from the module's by {diff:.3g} "
                       "(a wtc bug: please report it with the module)")
    return diff


__all__ = ["ImportedSpec", "Segment", "assign_roles", "import_model"]
