"""Functions and tensor methods → wtc ops (the `call_function`/`call_method` nodes)."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import torch
from torch import fx
from torch.nn import functional as F

from wtc.importer.modules import _layer_norm

if TYPE_CHECKING:  # the converter calls these functions: annotations only
    from wtc.importer.trace import _Converter

# every functional form of an activation wtc has, by the callable fx records
FUNCTIONAL_ACTS = {F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.silu: "silu",
                   F.hardswish: "hardswish", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
                   F.hardsigmoid: "hardsigmoid", F.gelu: "gelu", torch.tanh: "tanh",
                   F.tanh: "tanh", F.mish: "mish"}
ADDS = (operator.add, operator.iadd, torch.add)
MULS = (operator.mul, operator.imul, torch.mul)
PERMUTES = {(0, 2, 3, 1): "nhwc", (0, 3, 1, 2): "nchw"}


def describe(node: fx.Node) -> str:
    if node.op == "call_module":
        return f"'{type(node.graph.owning_module.get_submodule(node.target)).__name__}'"
    target = node.target
    return f"'{getattr(target, '__name__', target)}'"


def _arg(node: fx.Node, i: int, name: str, default: Any = None) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _is(node: fx.Node, name: str, *targets: Any) -> bool:
    if node.op == "call_method":
        return node.target == name
    return node.target in targets


def convert_function(c: _Converter, node: fx.Node) -> None:
    """One function or method call → a wtc op, an alias, or an ImportFailure naming it."""
    # long: one branch per function kind reads best as one table
    what = describe(node)
    t = node.target
    if (node.op == "call_function" and t in ADDS) or _is(node, "add", *ADDS):
        _join(c, node, "add")
    elif (node.op == "call_function" and t in MULS) or _is(node, "mul", *MULS):
        _mul(c, node)
    elif _is(node, "_", torch.cat, torch.concat):
        parts = [c.ref(node, a) for a in _arg(node, 0, "tensors")]
        dim = _arg(node, 1, "dim", 0)
        if dim not in (1, -3) or c.layout[parts[0]] != "nchw":
            c.fail(node, what, "wtc concatenates the channels of NCHW maps (dim=1)")
        if len(parts) == 1:
            c.alias(node, parts[0])
        else:
            c.add(node, "concat", parts)
    elif _is(node, "flatten", torch.flatten):
        x = c.ref(node, node.args[0])
        if _arg(node, 1, "start_dim", 0) != 1 or _arg(node, 2, "end_dim", -1) != -1:
            c.fail(node, what, "only flatten(x, 1) (N, C·H·W)")
        c.add(node, "flatten", [x], layout="flat")
    elif _is(node, "permute", torch.permute):
        _permute(c, node, what)
    elif _is(node, "reshape", torch.reshape) or _is(node, "view"):
        src = c.value.get(node.args[0].name) if isinstance(node.args[0], fx.Node) else None
        if not (isinstance(src, tuple) and src[0] == "param"):
            c.fail(node, what, "reshapes are supported only on parameters (a layer scale)")
        shape = node.args[1:] if node.op == "call_method" else (node.args[1],)
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        t = src[2].reshape(*shape)
        c.value[node.name] = ("param", src[1], t.reshape(t.shape[1:]) if t.dim() == 4 else t)
    elif _is(node, "contiguous"):
        c.alias(node, c.ref(node, node.args[0]))
    elif (node.op == "call_function" and t in FUNCTIONAL_ACTS) or _is(
            node, "relu") or _is(node, "sigmoid"):
        fn = FUNCTIONAL_ACTS.get(t, t if isinstance(t, str) else "")
        if fn == "gelu" and node.kwargs.get("approximate", "none") != "none":
            c.fail(node, what, "only the exact GELU")
        c.add(node, "act", [c.ref(node, node.args[0])], {"fn": fn})
    elif _is(node, "_", F.adaptive_avg_pool2d):
        size = _arg(node, 1, "output_size")
        size = size[0] if isinstance(size, (tuple, list)) and len(set(size)) == 1 else size
        x = c.ref(node, node.args[0])
        if size == 1:
            c.add(node, "gap", [x])
        else:
            c.add(node, "adaptive_avgpool", [x], {"size": size})
    elif _is(node, "mean", torch.mean):
        _mean(c, node, what)
    elif _is(node, "_", F.layer_norm):
        _layer_norm(c, node, c.ref(node, node.args[0]), tuple(_arg(node, 1, "normalized_shape")),
                    c.param(node, _arg(node, 2, "weight")), c.param(node, _arg(node, 3, "bias")),
                    _arg(node, 4, "eps", 1e-5), what)
    elif _is(node, "_", F.linear):
        x = c.ref(node, node.args[0])
        w = c.param(node, _arg(node, 1, "weight"))
        b = _arg(node, 2, "bias")
        weights = {"weight": w} if b is None else {"weight": w, "bias": c.param(node, b)}
        if c.layout[x] != "flat":
            c.fail(node, what, "a linear on a map (flatten it first)")
        c.add(node, "linear", [x], {"out": w.shape[0], "bias": b is not None}, weights)
    elif _is(node, "_", F.dropout):
        c.add(node, "dropout", [c.ref(node, node.args[0])], {"p": float(_arg(node, 1, "p", 0.5))})
    elif getattr(t, "__name__", "") == "stochastic_depth":
        if _arg(node, 2, "mode", "row") != "row":
            c.fail(node, what, "stochastic depth per batch has no wtc op")
        c.add(node, "droppath", [c.ref(node, node.args[0])], {"p": float(_arg(node, 1, "p"))})
    elif getattr(t, "__name__", "") == "channel_shuffle":
        c.add(node, "shuffle", [c.ref(node, node.args[0])], {"groups": _arg(node, 1, "groups")})
    elif _is(node, "chunk", torch.chunk):
        k, dim = _arg(node, 1, "chunks"), _arg(node, 2, "dim", 0)
        x = c.ref(node, node.args[0])
        if dim not in (1, -3) or c.layout[x] != "nchw":
            c.fail(node, what, "wtc splits the channels of NCHW maps (dim=1)")
        c.value[node.name] = ("chunks", x, k)
    elif node.op == "call_function" and t is operator.getitem:
        src = c.value.get(node.args[0].name) if isinstance(node.args[0], fx.Node) else None
        if not (isinstance(src, tuple) and src[0] == "chunks"):
            c.fail(node, what, "indexing is supported only on the chunks of a channel split")
        c.add(node, "split", [src[1]], {"chunks": src[2], "chunk": node.args[1]})
    else:
        c.fail(node, what, "no wtc op for this function")


def _join(c: _Converter, node: fx.Node, op: str) -> None:
    args = [a for a in node.args if isinstance(a, fx.Node)]
    if len(args) != 2 or len(node.args) != 2 or node.kwargs:
        c.fail(node, describe(node), f"wtc's {op} joins two tensors (no constants, no alpha)")
    c.add(node, op, [c.ref(node, a) for a in args])


def _mul(c: _Converter, node: fx.Node) -> None:
    a, b = node.args[:2]
    params = [x for x in (a, b) if isinstance(x, fx.Node)
              and isinstance(c.value.get(x.name), tuple)]
    if len(params) == 1:  # a learned per-channel scale (ConvNeXt's layer scale)
        p = params[0]
        x = b if p is a else a
        weight = c.param(node, p)
        src = c.ref(node, x)
        if weight.dim() != 3 or weight.shape[1:] != (1, 1) or c.layout[src] != "nchw":
            c.fail(node, describe(node), f"a product with a parameter of shape "
                   f"{tuple(weight.shape)}; wtc scales channels of NCHW maps (C, 1, 1)")
        init = float(weight.flatten()[0])
        c.add(node, "scale", [src], {"init": init}, {"weight": weight})
        c.ops[-1].attrs["param_path"] = str(c.value[p.name][1])
        if c.ops[-1].weights["weight"].dim() == 1:  # pragma: no cover - reshaped above
            raise AssertionError("a layer scale of shape (C,)")
        return
    _join(c, node, "mul")


def _permute(c: _Converter, node: fx.Node, what: str) -> None:
    dims = node.args[1:] if node.op == "call_method" else (_arg(node, 1, "dims"),)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    x = c.ref(node, node.args[0])
    to = PERMUTES.get(tuple(dims))
    expected = {"nhwc": "nchw", "nchw": "nhwc"}
    if to is None or c.layout[x] != expected[to]:
        c.fail(node, what, "only permutes into channels-last and back (around a layer norm "
               "or an MLP over channels)")
    c.add(node, "identity", [x], layout=to)


def _mean(c: _Converter, node: fx.Node, what: str) -> None:
    x = c.ref(node, node.args[0])
    dims = _arg(node, 1, "dim")
    keep = _arg(node, 2, "keepdim", False)
    if c.layout[x] != "nchw" or sorted(int(d) % 4 for d in (dims or ())) != [2, 3]:
        c.fail(node, what, "only a mean over the spatial dims (2, 3) of an NCHW map")
    if keep:
        c.add(node, "gap", [x])
        return
    n, ch = c.shape(node)[:2]
    c.add(node, "gap", [x], name=f"{node.name}_pool", shape=(n, ch, 1, 1))
    c.add(node, "flatten", [f"{node.name}_pool"], layout="flat")
