"""A PyTorch module → a flat list of wtc ops (`Op`), by torch.fx symbolic tracing.

Each fx node becomes one wtc op (conv, bn, act, pools, add, mul, concat, ...), an alias (an
identity, a permute into or out of channels-last, `contiguous`) or an error that names the
node, its module path and the op (`ImportError_`). Shapes come from running the traced graph on
the example input (`ShapeProp`), so channel counts, resolutions and the channels-last layout
of a ConvNeXt MLP (Linear layers between two permutes become 1x1 convolutions) are read, not
guessed. Weights are collected per op under the names the built wtc module uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from wtc.errors import UserInputError
from wtc.importer.functions import convert_function, describe
from wtc.importer.modules import convert_module


class ImportFailure(UserInputError):
    """A module wtc cannot import: an unsupported op, data-dependent control flow, a shape
    wtc's ops cannot express. Names the node, its module path and the op (exit 2)."""


@dataclass
class Op:
    """One wtc op of the traced network, in execution order."""

    name: str  # the fx node's name (unique)
    op: str  # the wtc op
    inputs: list[str]  # names of earlier ops, or "input"
    path: str  # module path of the node ("layer1.0.conv1"; functional ops: their module's)
    stack: tuple[str, ...]  # module paths enclosing the node, outermost first
    attrs: dict[str, Any] = field(default_factory=dict)  # wtc node fields, literal values
    weights: dict[str, Tensor] = field(default_factory=dict)  # wtc param/buffer → tensor
    channels: int = 0  # output channels
    hw: tuple[int, int] | None = None  # output size (None: flat)
    module: bool = False  # the op of a module (role: its path), not of a function
    moved: bool = False  # moved into the block before its own (role: its kind)


class TraceFailure(ImportFailure):
    """torch.fx could not trace the module (the caller may try torch.export)."""


class _ControlFlow(Exception):
    """A traced value used as a Python bool or iterated: the node that was."""

    def __init__(self, node: fx.Node, how: str) -> None:
        super().__init__(how)
        self.node, self.how = node, how


class _Tracer(fx.Tracer):
    """fx's tracer that keeps stochastic depth modules and batch norms (with timm's activation
    inside) whole, and names the node a data-dependent branch or loop depends on."""

    def to_bool(self, obj: fx.Proxy) -> bool:
        raise _ControlFlow(obj.node, "a Python `if`/`while` on a tensor value")

    def iter(self, obj: fx.Proxy) -> Any:
        raise _ControlFlow(obj.node, "a Python loop over a tensor value")

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if type(m).__name__ in ("StochasticDepth", "DropPath") or isinstance(
                m, nn.modules.batchnorm._BatchNorm):  # timm's BatchNormAct2d: bn + act
            return True
        return super().is_leaf_module(m, qualname)


def _autowrap() -> tuple[Any, ...]:
    fns = []
    try:  # torchvision's ShuffleNetV2 channel shuffle: one op, not five view/transposes
        from torchvision.models.shufflenetv2 import channel_shuffle

        fns.append(channel_shuffle)
    except ImportError:  # pragma: no cover - torchvision is a dependency
        pass
    return tuple(fns)


def trace(module: nn.Module, example: Tensor) -> tuple[list[Op], fx.GraphModule]:
    """The ops of `module` (in eval mode) on `example` (N, C, H, W)."""
    module = module.eval()
    tracer = _Tracer(autowrap_functions=_autowrap())
    try:
        graph = tracer.trace(module)
    except _ControlFlow as e:
        node = e.node
        target = getattr(node.target, "__name__", node.target)
        stack = [p for p in (node.meta.get("nn_module_stack") or {}) if p]
        path = _clean(stack[-1]) if stack else "<top>"
        raise TraceFailure(f"node '{node.name}' (module '{path}', op '{target}'): data-"
                            f"dependent control flow ({e.how}); wtc networks are one fixed "
                            "graph") from None
    except Exception as e:  # fx raises TraceError, TypeError, ... for untraceable code
        stack = list(getattr(tracer, "module_stack", {}).values())
        where = f" in module '{stack[-1][0]}' ({_cls(stack[-1][1])})" if stack and stack[-1][
            0] else ""
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise TraceFailure(f"torch.fx cannot trace the module{where}: {reason} (data-"
                            "dependent control flow or an untraceable call)") from None
    gm = fx.GraphModule(tracer.root, graph)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    except Exception as e:
        raise ImportFailure(f"the module does not run on an input of shape "
                            f"{tuple(example.shape)}: {str(e).strip()[:300]}") from None
    return _Converter(gm).run(), gm


def _cls(c: Any) -> str:
    return getattr(c, "__name__", str(c))


class _Converter:
    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.ops: list[Op] = []
        self.value: dict[str, Any] = {}  # fx node name → op name, alias target, or a marker
        self.layout: dict[str, str] = {}  # op name → "nchw" | "nhwc" | "flat"

    def run(self) -> list[Op]:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if self.value:
                    self.fail(node, "a second input", "wtc networks take one image tensor")
                self.value[node.name] = "input"
                self.layout["input"] = "nchw"
            elif node.op == "get_attr":
                self.value[node.name] = ("param", node.target, self.attr(node.target))
            elif node.op == "output":
                out = self.ref(node, node.args[0])
                if self.layout.get(out) != "flat":
                    self.fail(node, "output", "the network must end in (N, classes) logits")
                self.output = out
            else:
                self.convert(node)
        return self.ops

    # ------------------------------------------------------------------ helpers

    def fail(self, node: fx.Node, what: str, why: str) -> ImportFailure:
        path = _path(node) or "<top>"
        raise ImportFailure(f"node '{node.name}' (module '{path}', op {what}): {why}")

    def ref(self, node: fx.Node, arg: Any) -> str:
        if not isinstance(arg, fx.Node):
            self.fail(node, describe(node), f"expected a tensor argument, got {arg!r}")
        v = self.value.get(arg.name)
        if not isinstance(v, str):
            self.fail(node, describe(node), f"its input '{arg.name}' is not a feature map")
        return v

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            self.fail(node, describe(node), "its output is not a single tensor")
        return tuple(meta.shape)

    def add(self, node: fx.Node, op: str, inputs: list[str], attrs: dict[str, Any] | None = None,
            weights: dict[str, Tensor] | None = None, layout: str | None = None,
            name: str | None = None, shape: tuple[int, ...] | None = None,
            path: str | None = None) -> None:
        shape = shape or self.shape(node)
        layout = layout or self.layout[inputs[0]]
        if layout == "nchw":
            channels, hw = shape[1], (shape[2], shape[3])
            if hw[0] != hw[1]:
                self.fail(node, describe(node), f"wtc maps are square; this one is {hw}")
        elif layout == "nhwc":
            channels, hw = shape[3], (shape[1], shape[2])
        else:
            channels, hw = shape[1], None
        own_path, stack, module = self.where(node)
        name = name or node.name
        self.ops.append(Op(name, op, inputs, path or own_path, stack, attrs or {},
                           weights or {}, channels, hw, module))
        self.value[node.name] = name
        self.layout[name] = layout

    def where(self, node: fx.Node) -> tuple[str, tuple[str, ...], bool]:
        """(module path, enclosing module paths, whether the op is a module's own)."""
        stack = tuple(_clean(p) for p in (node.meta.get("nn_module_stack") or {}) if p)
        path = str(node.target) if node.op == "call_module" else _path(node)
        return path, stack, node.op == "call_module"

    def alias(self, node: fx.Node, target: str, layout: str | None = None) -> None:
        self.value[node.name] = target
        if layout is not None and target != "input":
            # a permute changes the layout of the same values: keep an alias op name apart
            self.layout[target] = layout

    def param(self, node: fx.Node, arg: Any) -> Tensor:
        v = self.value.get(arg.name) if isinstance(arg, fx.Node) else None
        if not (isinstance(v, tuple) and v[0] == "param"):
            self.fail(node, describe(node), "expected a parameter of the module")
        return v[2]

    def attr(self, target: str) -> Tensor:
        obj: Any = self.gm
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj.detach()

    # ------------------------------------------------------------------ nodes

    def convert(self, node: fx.Node) -> None:
        if node.op == "call_module":
            convert_module(self, node, self.modules[node.target])
        else:
            convert_function(self, node)


def _path(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = [p for p in (node.meta.get("nn_module_stack") or {}) if p]
    return _clean(stack[-1]) if stack else ""


def _clean(path: str) -> str:
    """fx marks the second call of a module `layer1.0.relu@1`: the module path is before @."""
    return path.split("@", 1)[0]
