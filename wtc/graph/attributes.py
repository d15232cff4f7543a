"""A template node's fields, evaluated for one block and checked against their bounds.

Every numeric field an op takes is evaluated (a literal, or an expression over the block's
parameters) and normalised here, with its default, so the graph, cost and build read plain
attributes: `kernel`, `stride`, `padding`, `dilation` of spatial ops, `groups` of a conv,
`group_width` of a grouped or depthwise conv, and so on. Bounds are those of `wtc.limits`.
A conv's or shuffle's `groups` field is stored as `num_groups` (a node's `groups` attribute is
the tuple of width groups its output carries).
"""

from __future__ import annotations

import math
from typing import Any

from wtc.limits import MAX_CHANNELS, MAX_KERNEL, MAX_RESOLUTION, MAX_STRIDE
from wtc.spec import expr
from wtc.spec.ops import ACTIVATIONS, OPS

# integer fields: (lowest, highest)
_INTS = {"out": (1, MAX_CHANNELS), "kernel": (1, MAX_KERNEL), "stride": (1, MAX_STRIDE),
         "padding": (0, MAX_STRIDE), "dilation": (1, MAX_STRIDE), "groups": (1, MAX_CHANNELS),
         "group_width": (1, MAX_CHANNELS), "chunks": (1, 64), "chunk": (0, 63),
         "size": (1, MAX_RESOLUTION)}
_POOLS = ("maxpool", "avgpool")


def node_attributes(node: Any, env: dict[str, Any]) -> dict[str, Any]:
    """The evaluated, checked attributes of `node` (an ExprError says which field is wrong)."""
    info = OPS.get(node.op)
    ev = {f: expr.evaluate(getattr(node, f), env) for f in info.fields - {"fn"}
          if getattr(node, f) is not None}
    attrs: dict[str, Any] = {f: _int(v, f) for f, v in ev.items() if f in _INTS}
    if info.spatial:
        k = attrs.setdefault("kernel", 1)
        attrs.setdefault("stride", k if node.op in _POOLS else 1)
        d = attrs.setdefault("dilation", 1)
        attrs.setdefault("padding", d * (k - 1) // 2)
    if "groups" in info.fields:  # stored as num_groups: a node's `groups` are its width groups
        attrs["num_groups"] = attrs.pop("groups", 1)
    if node.op == "dwconv":
        attrs["group_width"] = 1
    if node.op == "split":
        attrs.setdefault("chunks", 2)
    if "bias" in info.fields:
        attrs["bias"] = bool(ev.get("bias", node.op == "linear"))
    if node.op == "act":
        fn = env.get(node.fn, node.fn)
        if fn not in ACTIVATIONS:
            raise expr.ExprError(f"unknown activation '{fn}'; choose one of: "
                                 f"{', '.join(ACTIVATIONS)}")
        attrs["fn"] = fn
    if node.op in ("dropout", "droppath"):
        p = _float(ev.get("p", 0.5 if node.op == "dropout" else 0.0), "p")
        if not 0.0 <= p < 1.0:
            raise expr.ExprError(f"{node.op} p must be in [0, 1), got {p}")
        attrs["p"] = p
    if "eps" in info.fields:
        eps = _float(ev.get("eps", 1e-6 if node.op == "ln" else 1e-5), "eps")
        if not 0.0 < eps < 1.0:
            raise expr.ExprError(f"eps must be in (0, 1), got {eps}")
        attrs["eps"] = eps
    if "ceil_mode" in info.fields:
        attrs["ceil_mode"] = bool(ev.get("ceil_mode", False))
    if node.op == "bn":
        momentum = _float(ev.get("momentum", 0.1), "momentum")
        if not 0.0 < momentum <= 1.0:
            raise expr.ExprError(f"bn momentum must be in (0, 1], got {momentum}")
        attrs["momentum"] = momentum
    if node.op == "scale":
        attrs["init"] = _float(ev.get("init", 1.0), "init")
    return attrs


def _int(value: Any, what: str) -> int:
    lo, hi = _INTS[what]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        raise expr.ExprError(f"{what} must be a whole number, got {_show(value)}")
    if not lo <= value <= hi:
        raise expr.ExprError(f"{what} must be between {lo} and {hi:,}, got {_show(value)}")
    return int(value)


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise expr.ExprError(f"{what} must be a finite number, got {_show(value)}")
    return float(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
