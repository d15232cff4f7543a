"""Spec → StageGraph: expand stages into blocks, blocks into ops, and find the width groups.

Every node is named `<stage>.block<i>.<role>` and carries its stage, block index and role, so
the stage view, the width groups, cost, the torch build and transfer all read one structure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from wtc.errors import GraphError, SpecError
from wtc.graph.groups import Group, UnionFind
from wtc.spec import expr
from wtc.spec.check import template_for
from wtc.spec.ops import ACTIVATIONS, OPS, Channels
from wtc.spec.schema import BlockCall, Spec, StageSpec


@dataclass
class _Tensor:
    node: str
    chans: tuple[int, ...]  # union-find variables, one per concatenated part
    hw: tuple[int, int] | None  # None once flattened


@dataclass(frozen=True)
class StageInfo:
    """One row of the stage view (derived from the graph's nodes)."""

    name: str
    index: int  # position in spec.stages; -1 for the stem, len(stages) for the head
    block: str
    depth: int
    in_hw: tuple[int, int] | None
    out_hw: tuple[int, int] | None


@dataclass
class StageGraph:
    """The compiled IR: `nx` (ops as nodes, tensors as edges), `groups`, the derived `stages`."""

    spec: Spec
    nx: nx.DiGraph
    groups: dict[str, Group]
    order: list[str]  # nodes in execution order
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def spec_hash(self) -> str:
        return self.spec.structural_hash

    @property
    def free_groups(self) -> list[str]:
        return [g for g, grp in self.groups.items() if not grp.fixed]

    @property
    def stages(self) -> list[StageInfo]:
        if "stages" not in self._cache:
            rows: dict[str, dict[str, Any]] = {}
            for n in self.order:
                a = self.nx.nodes[n]
                if a["op"] == "input":
                    continue
                row = rows.setdefault(a["stage"], {"index": a["stage_index"], "block": a["block"],
                                                   "blocks": set(), "in": a["in_hw"]})
                row["blocks"].add(a["block_index"])
                row["out"] = a["out_hw"]
            self._cache["stages"] = [
                StageInfo(name, r["index"], r["block"], len(r["blocks"]), r["in"], r["out"])
                for name, r in rows.items()
            ]
        return self._cache["stages"]

    def node(self, name: str) -> dict[str, Any]:
        return self.nx.nodes[name]

    def blocks(self) -> Iterator[tuple[str, int, list[str]]]:
        """(stage, block index, its nodes in order) for every block, in execution order."""
        current: tuple[str, int] | None = None
        nodes: list[str] = []
        for n in self.order[1:]:
            a = self.nx.nodes[n]
            key = (a["stage"], a["block_index"])
            if key != current:
                if current is not None:
                    yield current[0], current[1], nodes
                current, nodes = key, []
            nodes.append(n)
        if current is not None:
            yield current[0], current[1], nodes


def compile_spec(spec: Spec) -> StageGraph:
    """Compile a validated spec into its stage graph with width groups."""
    return _Compiler(spec).run()


class _Compiler:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.g = nx.DiGraph()
        self.uf = UnionFind()
        self.var_base: list[int] = []
        self.var_producer: list[str] = []
        self.order: list[str] = []

    def new_var(self, base: int, producer: str) -> int:
        self.var_base.append(base)
        self.var_producer.append(producer)
        return self.uf.new()

    def run(self) -> StageGraph:
        spec = self.spec
        res = spec.input.resolution
        v = self.new_var(spec.input.channels, "input")
        self.g.add_node("input", op="input", stage="input", stage_index=-2, block_index=0,
                        role="input", block="input", chans=(v,), in_hw=None, out_hw=(res, res),
                        inputs=[])
        self.order.append("input")
        cur = _Tensor("input", (v,), (res, res))
        n = len(spec.stages)
        for b, call in enumerate(spec.stem):
            cur = self.block(cur, call, "stem", -1, b, f"stem[{b}]", call.stride, 1)
        for s, stage in enumerate(spec.stages):
            for b in range(stage.depth):
                stride = stage.stride if b == 0 else 1
                cur = self.block(cur, stage, stage.name, s, b, f"stages[{s}]", stride, stage.depth)
        for b, call in enumerate(spec.head):
            cur = self.block(cur, call, "head", n, b, f"head[{b}]", call.stride, 1)
        base = sum(self.var_base[self.uf.find(c)] for c in cur.chans)
        if cur.hw is not None or len(cur.chans) != 1 or base != spec.classes:
            shape = f"(N, {base})" if cur.hw is None else f"(N, {base}, {cur.hw[0]}, {cur.hw[1]})"
            raise self.error(f"head[{len(spec.head) - 1}]",
                             f"the head must end in (N, classes) = (N, {spec.classes}) logits; "
                             f"it ends in {shape} (end with a 'classifier' block)")
        return self.finish(cur)

    def error(self, path: str, message: str) -> SpecError:
        return SpecError(message, file=self.spec.source, line=self.spec.line_of(path), path=path)

    def block(self, x: _Tensor, call: BlockCall | StageSpec, stage: str, stage_index: int,
              index: int, path: str, stride: int, depth: int) -> _Tensor:
        template = template_for(self.spec, call.block)
        in_channels = sum(self.var_base[self.uf.find(c)] for c in x.chans)
        env: dict[str, Any] = {**template.params, **call.params, "width": call.width or in_channels,
                               "stride": stride, "in_channels": in_channels,
                               "classes": self.spec.classes, "index": index, "depth": depth}
        local: dict[str, _Tensor] = {"input": x}
        prefix = f"{stage}.block{index}"
        last = x
        for node in template.nodes:
            where = f"{path} (block '{call.block}', node '{node.name}')"
            inputs = [local[r] for r in node.inputs] if node.inputs is not None else [last]
            try:
                when = True if node.when is None else bool(expr.evaluate(node.when, env))
                if not when:  # a removed node forwards its first input
                    local[node.name] = last = inputs[0]
                    continue
                attrs = self.attributes(node, env)
            except expr.ExprError as e:
                raise self.error(path, f"{where}: {e}") from None
            name = f"{prefix}.{node.name}"
            out = self.apply(name, node.op, attrs, inputs, path, where)
            self.g.add_node(name, op=node.op, stage=stage, stage_index=stage_index,
                            block_index=index, role=node.name, block=call.block,
                            chans=out.chans, in_hw=inputs[0].hw, out_hw=out.hw,
                            inputs=[t.node for t in inputs], **attrs)
            for port, t in enumerate(inputs):
                self.g.add_edge(t.node, name, port=port)
            self.order.append(name)
            local[node.name] = last = out
        return local[template.output] if template.output else last

    def attributes(self, node: Any, env: dict[str, Any]) -> dict[str, Any]:
        info = OPS.get(node.op)
        ev = {f: expr.evaluate(getattr(node, f), env) for f in info.fields - {"fn"}
              if getattr(node, f) is not None}
        attrs: dict[str, Any] = {}
        if "out" in info.fields:
            attrs["out"] = _positive_int(ev["out"], "out")
        if info.spatial:
            pool = node.op in ("maxpool", "avgpool")
            k = _positive_int(ev.get("kernel", 1), "kernel")
            attrs["kernel"] = k
            attrs["stride"] = _positive_int(ev.get("stride", k if pool else 1), "stride")
            attrs["padding"] = _nonneg_int(ev.get("padding", (k - 1) // 2), "padding")
        if "bias" in info.fields:
            attrs["bias"] = bool(ev.get("bias", node.op == "linear"))
        if node.op == "act":
            fn = env.get(node.fn, node.fn)
            if fn not in ACTIVATIONS:
                raise expr.ExprError(f"unknown activation '{fn}'; choose one of: "
                                     f"{', '.join(ACTIVATIONS)}")
            attrs["fn"] = fn
        if node.op == "dropout":
            p = float(ev.get("p", 0.5))
            if not 0.0 <= p < 1.0:
                raise expr.ExprError(f"dropout p must be in [0, 1), got {p}")
            attrs["p"] = p
        return attrs

    def apply(self, name: str, op: str, attrs: dict[str, Any], inputs: list[_Tensor],
              path: str, where: str) -> _Tensor:
        info = OPS.get(op)
        x = inputs[0]
        if (info.spatial or op in ("gap", "flatten")) and x.hw is None:
            raise self.error(path, f"{where}: '{op}' needs a feature map, but its input "
                                   "was already flattened")
        hw = x.hw
        if info.spatial:
            assert hw is not None
            k, s, p = attrs["kernel"], attrs["stride"], attrs["padding"]
            hw = ((hw[0] + 2 * p - k) // s + 1, (hw[1] + 2 * p - k) // s + 1)
            if min(hw) < 1:
                raise self.error(path, f"{where}: a {k}x{k} {op} with stride {s} does not fit "
                                       f"a {x.hw[0]}x{x.hw[1]} input (resolution too small)")
        elif op == "gap":
            hw = (1, 1)
        elif op == "flatten":
            if x.hw != (1, 1):
                raise self.error(path, f"{where}: flatten needs a 1x1 map (put a 'gap' first), "
                                       f"got {x.hw}")
            hw = None
        elif op == "linear" and x.hw is not None:
            raise self.error(path, f"{where}: linear needs a flattened input (add 'flatten')")
        chans = x.chans
        if info.channels is Channels.NEW:
            chans = (self.new_var(attrs["out"], name),)
        elif info.channels is Channels.TIE:
            for other in inputs[1:]:
                ok = len(other.chans) == len(x.chans) and all(
                    self.var_base[self.uf.find(a)] == self.var_base[self.uf.find(b)]
                    for a, b in zip(x.chans, other.chans, strict=True))
                if not ok:
                    raise self.error(path, f"{where}: '{op}' joins {self._describe(x)} and "
                                           f"{self._describe(other)} channels; they must match")
                if op == "add" and other.hw != x.hw:
                    raise self.error(path, f"{where}: 'add' joins maps of {x.hw} and {other.hw}")
                for a, b in zip(x.chans, other.chans, strict=True):
                    self.uf.union(a, b)
            if op == "mul":
                hws = [t.hw for t in inputs]
                hw = next((h for h in hws if h != (1, 1)), (1, 1))
                if any(h not in ((1, 1), hw) for h in hws):
                    raise self.error(path, f"{where}: 'mul' joins maps of {hws}")
        elif info.channels is Channels.CONCAT:
            if any(t.hw != x.hw for t in inputs):
                raise self.error(path, f"{where}: 'concat' joins maps of "
                                       f"{[t.hw for t in inputs]}")
            chans = tuple(c for t in inputs for c in t.chans)
        return _Tensor(name, chans, hw)

    def _describe(self, t: _Tensor) -> str:
        return "+".join(str(self.var_base[self.uf.find(c)]) for c in t.chans)

    def finish(self, logits: _Tensor) -> StageGraph:
        g, uf = self.g, self.uf
        roots: dict[int, list[int]] = {}
        for v in range(len(self.var_base)):
            roots.setdefault(uf.find(v), []).append(v)
        tied = {uf.find(c) for n in self.order if g.nodes[n]["op"] in ("add", "mul")
                for c in g.nodes[n]["chans"]}
        input_root, logits_root = uf.find(0), uf.find(logits.chans[0])
        if input_root == logits_root:
            raise GraphError("the input channels and the logits are tied together")
        members: dict[int, list[str]] = {}
        for n in self.order:
            for c in g.nodes[n]["chans"]:
                members.setdefault(uf.find(c), []).append(n)
        named: dict[int, tuple[str, str]] = {}
        res_names: dict[str, list[int]] = {}
        for root, variables in roots.items():
            producers = [self.var_producer[v] for v in variables]
            blocks = {(g.nodes[p]["stage"], g.nodes[p]["block_index"]) for p in producers}
            last = producers[-1]
            stage = g.nodes[last]["stage"]
            if root == input_root:
                named[root] = ("input", "input")
            elif root == logits_root:
                named[root] = ("logits", "logits")
            elif root in tied or len(blocks) > 1:
                res_names.setdefault(stage, []).append(root)
            else:
                named[root] = (last, "block")
        for stage, rs in res_names.items():
            for k, root in enumerate(rs):
                named[root] = (f"{stage}.res" if len(rs) == 1 else f"{stage}.res{k}", "res")
        groups: dict[str, Group] = {}
        for root in sorted(roots, key=lambda r: self.order.index(self.var_producer[r])):
            gid, kind = named[root]
            producers = tuple(self.var_producer[v] for v in roots[root])
            positions = tuple((g.nodes[p]["stage"], g.nodes[p]["block_index"], g.nodes[p]["role"])
                              for p in producers)
            groups[gid] = Group(id=gid, base=self.var_base[root], kind=kind,
                                stage=g.nodes[producers[-1]]["stage"], producers=producers,
                                members=tuple(members.get(root, ())), positions=positions)
        for n in self.order:  # channels as group ids, the only form other layers see
            a = g.nodes[n]
            a["groups"] = tuple(named[uf.find(c)][0] for c in a.pop("chans"))
        for n in self.order:
            a = g.nodes[n]
            a["in_groups"] = tuple(gid for i in a["inputs"][:1] for gid in g.nodes[i]["groups"])
        return StageGraph(spec=self.spec, nx=g, groups=groups, order=self.order)


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
            or value < 1:
        raise expr.ExprError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _nonneg_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise expr.ExprError(f"{what} must be a non-negative integer, got {value!r}")
    return value
