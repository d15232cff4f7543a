"""The fallback tracer: `torch.export` where torch.fx cannot trace (a branch on a shape, a loop
over `x.size()`), its ATen graph mapped onto the same wtc ops as `trace` maps fx nodes.

torch.export specialises shapes on the example input, so shape-dependent Python runs once and
leaves a fixed graph; a branch on tensor values still fails (there is no fixed graph to
import). Parameters and buffers are graph inputs, named by their module paths in the graph
signature, so weights are read from the exported program's state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from wtc.importer.functions import describe
from wtc.importer.modules import _layer_norm
from wtc.importer.trace import ImportFailure, Op, _Converter

_ACTS = {"relu": "relu", "silu": "silu", "hardswish": "hardswish", "sigmoid": "sigmoid",
         "hardsigmoid": "hardsigmoid", "tanh": "tanh", "mish": "mish"}
_ALIASES = ("clone", "contiguous", "alias", "detach", "identity")


def export_ops(module: nn.Module, example: Tensor) -> list[Op]:
    """The ops of `module` by torch.export (raises ImportFailure when that fails too)."""
    try:
        ep = torch.export.export(module, (example,))
    except Exception as e:  # export raises many kinds for untraceable code
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ImportFailure(f"torch.export cannot trace the module either: {reason}") from None
    return _Exported(ep).run()


class _Exported(_Converter):
    def __init__(self, ep: ExportedProgram) -> None:
        super().__init__(ep.graph_module)
        self.ep = ep
        self.state = {**ep.state_dict, **getattr(ep, "constants", {})}
        self.inputs = {s.arg.name: s for s in ep.graph_signature.input_specs}

    def run(self) -> list[Op]:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                spec = self.inputs[node.name]
                if spec.kind == InputKind.USER_INPUT:
                    self.value[node.name] = "input"
                    self.layout["input"] = "nchw"
                else:
                    self.value[node.name] = ("param", spec.target,
                                             self.state[spec.target].detach())
            elif node.op == "output":
                outs = node.args[0]
                out = self.ref(node, outs[0] if isinstance(outs, (tuple, list)) else outs)
                if self.layout.get(out) != "flat":
                    self.fail(node, "output", "the network must end in (N, classes) logits")
            elif node.op == "call_function":
                self.convert(node)
        return self.ops

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            self.fail(node, describe(node), "its output is not a single tensor")
        return tuple(int(d) for d in val.shape)

    def where(self, node: fx.Node) -> tuple[str, tuple[str, ...], bool]:
        entries = [v for v in (node.meta.get("nn_module_stack") or {}).values() if v[0]]
        stack = tuple(str(path) for path, _ in entries)
        cls = str(entries[-1][1]) if entries else ""
        return (stack[-1] if stack else ""), stack, "torch.nn.modules." in cls

    def convert(self, node: fx.Node) -> None:
        convert_aten(self, node)


def _name(node: fx.Node) -> str:
    if node.target is __import__("operator").getitem:
        return "getitem"
    return str(node.target).split(".")[1].rstrip("_")


def _a(node: fx.Node, i: int, default: Any = None) -> Any:
    return node.args[i] if len(node.args) > i else default


def _one(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            return None
        return value[0]
    return value


def convert_aten(c: _Exported, node: fx.Node) -> None:
    """One ATen op → a wtc op, an alias, or an ImportFailure naming it."""
    # long: one branch per ATen op reads best as one table
    name, what = _name(node), describe(node)
    x = c.value.get(node.args[0].name) if node.args and isinstance(node.args[0], fx.Node) \
        else None
    if name == "conv2d":
        _conv(c, node, what)
    elif name == "batch_norm":
        w, b, mean, var = (c.param(node, a) for a in node.args[1:5])
        key = c.value[node.args[3].name][1]
        prefix = key[:-len("running_mean")]
        state = {"weight": w, "bias": b, "running_mean": mean, "running_var": var}
        if f"{prefix}num_batches_tracked" in c.state:
            state["num_batches_tracked"] = c.state[f"{prefix}num_batches_tracked"]
        c.add(node, "bn", [c.ref(node, node.args[0])],
              {"eps": float(_a(node, 7, 1e-5)), "momentum": float(_a(node, 6, 0.1))}, state)
    elif name in _ACTS or (name == "gelu" and node.kwargs.get("approximate", "none") == "none"):
        c.add(node, "act", [c.ref(node, node.args[0])], {"fn": _ACTS.get(name, "gelu")})
    elif name == "hardtanh" and (_a(node, 1, -1.0), _a(node, 2, 1.0)) == (0.0, 6.0):
        c.add(node, "act", [c.ref(node, node.args[0])], {"fn": "relu6"})
    elif name in ("max_pool2d", "avg_pool2d"):
        _pool(c, node, name, what)
    elif name == "adaptive_avg_pool2d":
        size = _one(node.args[1])
        c.add(node, "gap" if size == 1 else "adaptive_avgpool", [c.ref(node, node.args[0])],
              {} if size == 1 else {"size": size})
    elif name == "mean" and sorted(int(d) % 4 for d in node.args[1]) == [2, 3]:
        src = c.ref(node, node.args[0])
        if _a(node, 2, False):
            c.add(node, "gap", [src])
        else:
            n, ch = c.shape(node)[:2]
            c.add(node, "gap", [src], name=f"{node.name}_pool", shape=(n, ch, 1, 1))
            c.add(node, "flatten", [f"{node.name}_pool"], layout="flat")
    elif name == "flatten" and _a(node, 1, 0) == 1 and _a(node, 2, -1) == -1:
        c.add(node, "flatten", [c.ref(node, node.args[0])], layout="flat")
    elif name in ("view", "reshape", "transpose") or (name in _ALIASES and isinstance(x, tuple)):
        _reshape(c, node, name, what, x)
    elif name in _ALIASES:
        c.alias(node, c.ref(node, node.args[0]))
    elif name == "dropout":
        c.add(node, "dropout", [c.ref(node, node.args[0])], {"p": float(node.args[1])})
    elif name == "add" and len(node.args) == 2 and not node.kwargs:
        c.add(node, "add", [c.ref(node, a) for a in node.args])
    elif name == "mul":
        _mul(c, node, what)
    elif name == "cat" and _a(node, 1, 0) in (1, -3):
        parts = [c.ref(node, a) for a in node.args[0]]
        if len(parts) == 1:
            c.alias(node, parts[0])
        else:
            c.add(node, "concat", parts)
    elif name == "linear":
        _linear(c, node, what)
    elif name == "layer_norm":
        _layer_norm(c, node, c.ref(node, node.args[0]), tuple(node.args[1]),
                    c.param(node, node.args[2]), c.param(node, node.args[3]),
                    float(_a(node, 4, 1e-5)), what)
    elif name == "permute":
        _permute(c, node, what)
    elif name == "chunk" and _a(node, 2, 0) in (1, -3):
        c.value[node.name] = ("chunks", c.ref(node, node.args[0]), node.args[1])
    elif name == "getitem" and isinstance(x, tuple) and x[0] == "chunks":
        c.add(node, "split", [x[1]], {"chunks": x[2], "chunk": node.args[1]})
    else:
        c.fail(node, what, "no wtc op for this ATen op")


def _conv(c: _Exported, node: fx.Node, what: str) -> None:
    w = c.param(node, node.args[1])
    b = _a(node, 2)
    k, s = _one(w.shape[2:]), _one(_a(node, 3, [1]))
    p, d = _a(node, 4, [0]), _one(_a(node, 5, [1]))
    g = int(_a(node, 6, 1))
    if isinstance(p, str) or _one(p) is None or None in (k, s, d):
        c.fail(node, what, "wtc convolutions are square with numeric padding")
    cout, cin = int(w.shape[0]), int(w.shape[1]) * g
    attrs: dict[str, Any] = {"kernel": k, "stride": s, "padding": _one(p), "dilation": d,
                             "bias": b is not None}
    weights = {"weight": w} if b is None else {"weight": w, "bias": c.param(node, b)}
    if g == 1:
        op, attrs["out"] = "conv", cout
    elif g == cin == cout:
        op = "dwconv"
    elif cin == cout:
        op, attrs["group_width"] = "gconv", cin // g
    else:
        op = "conv"
        attrs.update(out=cout, groups=g)
    c.add(node, op, [c.ref(node, node.args[0])], attrs, weights)


def _pool(c: _Exported, node: fx.Node, name: str, what: str) -> None:
    k = _one(node.args[1])
    s = _one(_a(node, 2, []) or node.args[1])
    p = _one(_a(node, 3, [0]))
    if name == "max_pool2d":
        ceil = bool(_a(node, 5, False))
        if _one(_a(node, 4, [1])) != 1:
            c.fail(node, what, "only undilated max pooling")
    else:
        ceil = bool(_a(node, 4, False))
        if (not _a(node, 5, True) and p != 0) or _a(node, 6) is not None:
            c.fail(node, what, "only average pooling that counts the padding (or has none)")
    c.add(node, "maxpool" if name == "max_pool2d" else "avgpool", [c.ref(node, node.args[0])],
          {"kernel": k, "stride": s, "padding": p, "ceil_mode": ceil})


def _reshape(c: _Exported, node: fx.Node, name: str, what: str, x: Any) -> None:
    """view/reshape/transpose: a flatten, a reshaped layer scale, or a channel shuffle
    (view to N, g, C/g, H, W; transpose 1, 2; view back)."""
    out = c.shape(node)
    if isinstance(x, tuple) and x[0] == "param":
        t = x[2].reshape(out)
        c.value[node.name] = ("param", x[1], t.reshape(t.shape[1:]) if t.dim() == 4 else t)
        return
    if isinstance(x, tuple) and x[0] == "shuffle":
        src, g, stage = x[1:]
        if name in _ALIASES or (name == "transpose" and stage == "view"
                                and sorted(node.args[1:3]) == [1, 2]):
            c.value[node.name] = ("shuffle", src, g, "transposed" if name == "transpose"
                                  else stage)
            return
        if name in ("view", "reshape") and stage == "transposed" and len(out) == 4:
            c.add(node, "shuffle", [src], {"groups": g})
            return
    src = c.ref(node, node.args[0])
    if name in ("view", "reshape") and len(out) == 2 and c.layout[src] == "nchw":
        c.add(node, "flatten", [src], layout="flat")
    elif name in ("view", "reshape") and len(out) == 5 and c.layout[src] == "nchw":
        c.value[node.name] = ("shuffle", src, out[1], "view")
    else:
        c.fail(node, what, f"a reshape to {out} that is neither a flatten nor a channel shuffle")


def _mul(c: _Exported, node: fx.Node, what: str) -> None:
    a, b = node.args[:2]
    kinds = [c.value.get(v.name) if isinstance(v, fx.Node) else None for v in (a, b)]
    params = [i for i, k in enumerate(kinds) if isinstance(k, tuple) and k[0] == "param"]
    if len(params) == 1:
        weight = kinds[params[0]][2]
        src = c.ref(node, (b, a)[params[0]])
        if weight.dim() != 3 or tuple(weight.shape[1:]) != (1, 1):
            c.fail(node, what, f"a product with a parameter of shape {tuple(weight.shape)}")
        c.add(node, "scale", [src], {"init": float(weight.flatten()[0]),
                                     "param_path": kinds[params[0]][1]}, {"weight": weight})
        return
    c.add(node, "mul", [c.ref(node, v) for v in (a, b)])


def _linear(c: _Exported, node: fx.Node, what: str) -> None:
    src = c.ref(node, node.args[0])
    w = c.param(node, node.args[1])
    b = _a(node, 2)
    weights = {"weight": w} if b is None else {"weight": w, "bias": c.param(node, b)}
    attrs = {"out": int(w.shape[0]), "bias": b is not None}
    if c.layout[src] == "nhwc":
        weights["weight"] = w.reshape(*w.shape, 1, 1)
        c.add(node, "conv", [src], {**attrs, "kernel": 1}, weights)
    elif c.layout[src] == "flat":
        c.add(node, "linear", [src], attrs, weights)
    else:
        c.fail(node, what, "a linear on an NCHW map")


def _permute(c: _Exported, node: fx.Node, what: str) -> None:
    src = c.ref(node, node.args[0])
    to = {(0, 2, 3, 1): "nhwc", (0, 3, 1, 2): "nchw"}.get(tuple(node.args[1]))
    if to is None or c.layout[src] == to:
        c.fail(node, what, "only permutes into channels-last and back")
    c.add(node, "identity", [src], layout=to)
