"""Blocks of traced ops → one block template and the stage call that runs it.

The blocks of a stage are aligned by role (an op's module path inside its block: `conv1`,
`downsample_0`; a function's kind: `add`, `mul`). A role some blocks lack gets a `when` on the
block index and says what it forwards; a value that is the same in every block is written as
a literal, one that follows the block's `width`, `in_channels`, `stride` or `classes` as that
expression, anything else as a per-block list on the stage. `Unaligned` says the blocks cannot
share one template (the caller then gives each its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wtc.importer.trace import Op


class Unaligned(ValueError):
    """The blocks of a stage do not fit one template."""


@dataclass
class Built:
    """A template, the call's parameters, and each block's op name → role."""

    template: dict[str, Any]
    params: dict[str, Any]  # the call's parameters (per-block lists in a stage)
    width: int | None
    stride: int
    roles: list[dict[str, str]]


_OUT_CANDIDATES = (["width", "in_channels"] + [f"width * {k}" for k in (2, 3, 4, 6, 8)]
                   + [f"width // {k}" for k in (2, 4, 8)]
                   + [f"in_channels * {k}" for k in (2, 3, 4, 6)]
                   + [f"in_channels // {k}" for k in (2, 4)])
_DEFAULT_FALSE = ("ceil_mode",)
_FIELD_ORDER = ["name", "op", "inputs", "when", "forwards", "out", "kernel", "stride", "padding",
                "dilation", "groups", "group_width", "size", "ceil_mode", "bias", "fn", "chunks",
                "chunk", "p", "eps", "momentum", "init"]


def assign_roles(ops: list[Op], base: str) -> dict[str, str]:
    """op name → a role, unique in the block: the module path below `base`, else the kind."""
    roles: dict[str, str] = {}
    used: set[str] = set()
    for op in ops:
        path = op.attrs.get("param_path", op.path) if op.op == "scale" else op.path
        rel = path[len(base) + 1:] if base and path.startswith(base + ".") else (
            "" if path == base else path)
        if op.moved:
            role = op.op
        elif op.module or op.op == "scale":
            role = rel or op.op
        else:
            role = f"{rel}_{op.op}" if rel else op.op
        role = re.sub(r"\W", "_", role)
        if role[0].isdigit():
            role = f"{op.op}_{role}"
        if role == "input":
            role = "input_op"
        name, k = role, 0
        while name in used:
            k += 1
            name = f"{role}_{k}"
        used.add(name)
        roles[op.name] = name
    return roles


def common_base(ops: list[Op]) -> str:
    """The deepest module path every op of a glue segment sits under (their parents')."""
    parents = [o.path.rsplit(".", 1)[0] if o.module and "." in o.path else
               ("" if o.module else o.path) for o in ops]
    parts = [p.split(".") if p else [] for p in parents]
    common: list[str] = []
    for group in zip(*parts, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    return ".".join(common) if all(len(p) >= len(common) for p in parts) else ""


def build(blocks: list[list[Op]], inputs: list[str], in_ch: list[int], bases: list[str], *,
          head: bool, stage: bool, classes: int) -> Built:
    """The template of these blocks (one per block of a stage, or the stem's or head's)."""
    # long: aligning the blocks and writing each field share all their local tables
    roles = [assign_roles(ops, base) for ops, base in zip(blocks, bases, strict=True)]
    order = _merged_order([[r[o.name] for o in ops] for ops, r in zip(blocks, roles,
                                                                    strict=True)])
    depth = len(blocks)
    by_role: list[dict[str, Op]] = [{r[o.name]: o for o in ops} for ops, r in zip(
        blocks, roles, strict=True)]
    local = [{o.name: r[o.name] for o in ops} for ops, r in zip(blocks, roles, strict=True)]

    def ins(b: int, op: Op) -> list[str]:
        return ["input" if i == inputs[b] else local[b][i] for i in op.inputs]

    present = {role: [b for b in range(depth) if role in by_role[b]] for role in order}
    partial = {role for role in order if len(present[role]) < depth}
    # a role's inputs: those of the block that reads the most conditional roles (a removed
    # role can forward a tensor every block has, never the other way round)
    lists = {role: max((ins(b, by_role[b][role]) for b in present[role]),
                       key=lambda xs: sum(x in partial for x in xs)) for role in order}
    lasts = [r[blocks[b][-1].name] for b, r in enumerate(roles)]
    forwards = _forwards(order, present, lists, by_role, ins, depth, lasts)
    for b, r in enumerate(roles):
        if _resolve(order[-1], b, present, forwards) != r[blocks[b][-1].name]:
            raise Unaligned("the blocks end in different ops")
    width = blocks[-1][-1].channels
    stride = max((o.attrs.get("stride", 1) for o in blocks[0] if "stride" in o.attrs), default=1)
    strides = [stride if b == 0 else 1 for b in range(depth)]
    params: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    nodes = []
    uses_width = uses_stride = False
    for k, role in enumerate(order):
        ops = {b: by_role[b][role] for b in present[role]}
        kinds = {o.op for o in ops.values()}
        if len(kinds) != 1:
            raise Unaligned(f"role '{role}' is {sorted(kinds)} in different blocks")
        node: dict[str, Any] = {"name": role, "op": kinds.pop()}
        prev = order[k - 1] if k else "input"
        if lists[role] != [prev]:
            node["inputs"] = lists[role]
        if len(ops) < depth:
            node["when"] = _when(sorted(ops), depth)
            node["forwards"] = forwards[role]
        fields = dict.fromkeys(f for o in ops.values() for f in o.attrs if f != "param_path")
        for f in fields:
            values = {b: o.attrs.get(f) for b, o in ops.items()}
            env = {b: {"width": width, "in_channels": in_ch[b], "stride": strides[b],
                       "classes": classes} for b in ops}
            value = _express(f, values, env, head, stage, depth)
            if isinstance(value, tuple):  # a per-block list: a template parameter
                pname = f"{role}_{f}"
                filler = next(iter(values.values()))
                params[pname] = [values.get(b, filler) for b in range(depth)]
                defaults[pname] = filler
                value = pname
            uses_width |= isinstance(value, str) and "width" in value and f != "fn"
            uses_stride |= value == "stride"
            node[f] = value
        _drop_defaults(node)
        nodes.append({k: node[k] for k in sorted(node, key=_FIELD_ORDER.index)})
    template: dict[str, Any] = {"nodes": nodes}
    if defaults:
        template["params"] = defaults
    return Built(template, params, width if uses_width else None,
                 stride if uses_stride else 1, roles)


def _merged_order(seqs: list[list[str]]) -> list[str]:
    """One order of every role, keeping each block's order (a role a block lacks goes after
    the role before it in the block that has it)."""
    order: list[str] = []
    for seq in seqs:
        prev = None
        for role in seq:
            if role not in order:
                at = order.index(prev) + 1 if prev is not None else 0
                order.insert(at, role)
            elif prev is not None and order.index(role) < order.index(prev):
                raise Unaligned(f"blocks run '{role}' and '{prev}' in different orders")
            prev = role
    return order


def _forwards(order: list[str], present: dict[str, list[int]], lists: dict[str, list[str]],
              by_role: list[dict[str, Op]], ins: Any, depth: int, lasts: list[str]
              ) -> dict[str, str]:
    """What each conditional role forwards where it is absent, read from its consumers (and,
    for the block's output, from what the block returns)."""
    out: dict[str, str] = {}
    for role in order:
        if len(present[role]) == depth:
            continue
        seen: set[str] = set()
        for b in range(depth):
            if b in present[role]:
                continue
            if role == order[-1]:
                seen.add(lasts[b])
            for other in order:
                if b not in present[other] or role not in lists[other]:
                    continue
                actual = ins(b, by_role[b][other])
                if len(actual) != len(lists[other]):
                    raise Unaligned(f"'{other}' reads {len(actual)} inputs in one block, "
                                    f"{len(lists[other])} in another")
                for want, got in zip(lists[other], actual, strict=True):
                    if want == role:
                        seen.add(got)
        target = seen.pop() if len(seen) == 1 else (lists[role][0] if not seen else None)
        if target is None or (target != "input" and order.index(target) > order.index(role)):
            raise Unaligned(f"'{role}' would forward different tensors in different blocks")
        out[role] = target
    for role in order:  # every present consumer must then read what its block reads
        for b in present[role]:
            resolved = [_resolve(x, b, present, out) for x in lists[role]]
            if resolved != ins(b, by_role[b][role]):
                raise Unaligned(f"'{role}' reads different inputs in different blocks")
    return out


def _resolve(x: str, b: int, present: dict[str, list[int]], fwd: dict[str, str]) -> str:
    while x != "input" and b not in present[x]:
        x = fwd[x]
    return x


def _when(blocks: list[int], depth: int) -> str:
    if blocks == [0]:
        return "index == 0"
    if blocks == list(range(1, depth)):
        return "index != 0"
    return " or ".join(f"index == {b}" for b in blocks)


def _express(f: str, values: dict[int, Any], env: dict[int, dict[str, int]], head: bool,
             stage: bool, depth: int) -> Any:
    """A literal, an expression over the block's names, or (values,) for a per-block list."""
    vals = list(values.values())
    if f == "out":
        for cand in ["classes"] if head else _OUT_CANDIDATES:
            if all(_eval(cand, env[b]) == v for b, v in values.items()):
                return cand
    if f == "stride" and any(e["stride"] > 1 for e in env.values()) and all(
            env[b]["stride"] == v for b, v in values.items()):
        return "stride"
    if all(v == vals[0] for v in vals):
        return vals[0]
    if not stage:  # pragma: no cover - stem and head blocks run once
        raise Unaligned(f"field {f} differs")
    return (tuple(vals),)


def _eval(text: str, env: dict[str, int]) -> int | None:
    name, _, rest = text.partition(" ")
    v = env[name]
    if not rest:
        return v
    op, k = rest.split()
    return v * int(k) if op == "*" else (v // int(k) if v % int(k) == 0 else None)


def _drop_defaults(node: dict[str, Any]) -> None:
    """Leave out fields equal to the op's default, so the YAML reads like a hand-written one."""
    op = node["op"]
    k = node.get("kernel")
    d = node.get("dilation", 1)
    pool = op in ("maxpool", "avgpool")
    if node.get("dilation") == 1:
        node.pop("dilation")
    if isinstance(k, int) and isinstance(d, int) and node.get("padding") == d * (k - 1) // 2:
        node.pop("padding")
    if node.get("stride") == (k if pool else 1) and (not pool or isinstance(k, int)):
        node.pop("stride")
    if node.get("bias") is (op == "linear"):
        node.pop("bias")
    for f in _DEFAULT_FALSE:
        if node.get(f) is False:
            node.pop(f)
    if op == "bn" and node.get("eps") == 1e-5:
        node.pop("eps")
    if op == "bn" and node.get("momentum") == 0.1:
        node.pop("momentum")
    if op == "ln" and node.get("eps") == 1e-6:
        node.pop("eps")
    if op == "droppath" and node.get("p") == 0.0:
        node.pop("p")
    if op == "dropout" and node.get("p") == 0.5:
        node.pop("p")
