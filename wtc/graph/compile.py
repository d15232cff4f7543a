"""Spec → StageGraph: expand stages into blocks, blocks into ops, and find the width groups.

Every node is named `<stage>.block<i>.<role>` and carries its stage, block index and role, so
the stage view, the width groups, cost, the torch build and transfer all read one structure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from wtc.errors import GraphError, SpecError
from wtc.graph import rules
from wtc.graph.attributes import node_attributes
from wtc.graph.groups import Group
from wtc.graph.rules import ChannelVars
from wtc.spec import expr
from wtc.spec.check import template_for, template_names
from wtc.spec.load import load_spec
from wtc.spec.ops import OPS, Channels
from wtc.spec.schema import BlockCall, Spec, StageSpec


@dataclass
class _Tensor:
    node: str
    chans: tuple[int, ...]  # union-find variables, one per concatenated part
    hw: tuple[int, int] | None  # None once flattened
    area: int = 1  # positions per channel of a flattened map (H·W before flatten)


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

    def derived(self, key: str, make: Callable[[], Any]) -> Any:
        """A value computed from this graph once and kept with it (the graph is not changed
        after compilation): the cost model's terms, for instance. `key` names its owner."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

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


# what a public call accepts as the network: a compiled graph, a spec, or a spec's YAML path
SpecLike = StageGraph | Spec | str | Path


def as_graph(spec: SpecLike) -> StageGraph:
    """The one normalizer of a `SpecLike`: a StageGraph as it is, a Spec compiled, a path
    loaded (SpecError naming the file) and compiled."""
    if isinstance(spec, StageGraph):
        return spec
    if isinstance(spec, str | Path):
        spec = load_spec(spec)
    if not isinstance(spec, Spec):
        raise SpecError(f"expected a spec (a StageGraph, a Spec or a YAML path), not "
                        f"{type(spec).__name__}")
    return compile_spec(spec)


class _Compiler:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.g = nx.DiGraph()
        self.cv = ChannelVars()
        self.order: list[str] = []
        self.block_id = 0  # position of a stage block among all stage blocks
        self.num_blocks = sum(s.depth for s in spec.stages)

    def run(self) -> StageGraph:
        spec = self.spec
        res = spec.input.resolution
        v = self.cv.new(spec.input.channels, "input")
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
                self.block_id += 1
        for b, call in enumerate(spec.head):
            cur = self.block(cur, call, "head", n, b, f"head[{b}]", call.stride, 1)
        base = sum(self.cv.width(c) for c in cur.chans)
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
        in_channels = sum(self.cv.width(c) for c in x.chans)
        params = {k: v[index] if isinstance(v, list) else v for k, v in call.params.items()}
        env: dict[str, Any] = {**template.params, **params, "width": call.width or in_channels,
                               "stride": stride, "in_channels": in_channels,
                               "classes": self.spec.classes, "index": index, "depth": depth,
                               "block_id": self.block_id, "num_blocks": self.num_blocks}
        local: dict[str, _Tensor] = {"input": x}
        implicit: dict[str, _Tensor] = {}  # removed nodes that forward their first input
        prefix = f"{stage}.block{index}"
        last = x
        for node in template.nodes:
            where = f"{path} (block '{call.block}', node '{node.name}')"
            inputs = [local[r] for r in node.inputs] if node.inputs is not None else [last]
            try:
                when = True if node.when is None else bool(expr.evaluate(node.when, env))
                if not when:  # a removed node forwards `forwards`, else its first input
                    local[node.name] = last = local[node.forwards] if node.forwards else inputs[0]
                    if node.forwards is None and last is not x:
                        implicit[node.name] = last
                    continue
                attrs = node_attributes(node, env)
            except expr.ExprError as e:
                raise self.error(path, f"{where}: {e}") from None
            self.check_forwarded(node, implicit, local, path, where)
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
        if index == 0 and call.width is not None and "width" not in template_names(template):
            raise self.error(f"{path}.width", f"block '{call.block}' never reads `width`, so "
                             f"width {call.width} would change nothing (but the spec hash); "
                             "remove it")
        return local[template.output] if template.output else last

    def check_forwarded(self, node: Any, implicit: dict[str, _Tensor],
                        local: dict[str, _Tensor], path: str, where: str) -> None:
        """A join (add, mul, concat) fed by a removed node that silently forwards an inner
        tensor the join's other input is computed from (a pre-activation shortcut that
        forwards the activation, not the block input) must say what it forwards."""
        if node.op not in ("add", "mul", "concat") or not node.inputs:
            return
        for ref in node.inputs:
            if ref not in implicit:
                continue
            fwd = implicit[ref].node
            for other in node.inputs:
                o = local[other].node
                if other != ref and o != fwd and fwd in nx.ancestors(self.g, o):
                    raise self.error(path, (
                        f"{where}: '{ref}' is removed here and forwards its first input "
                        f"'{fwd}', from which '{other}' is computed too, so '{node.op}' would "
                        f"join '{fwd}' with its own transform; say what '{ref}' forwards "
                        f"when removed: `forwards: input` (the block input) or "
                        f"`forwards: {fwd.rsplit('.', 1)[-1]}`"))

    def apply(self, name: str, op: str, attrs: dict[str, Any], inputs: list[_Tensor],
              path: str, where: str) -> _Tensor:
        info = OPS.get(op)
        x = inputs[0]
        if (info.spatial or op in _MAPS) and x.hw is None:
            raise self.error(path, f"{where}: '{op}' needs a feature map, but its input "
                                   "was already flattened")
        if x.area > 1 and op not in _AFTER_FLATTEN:
            raise self.error(path, f"{where}: '{op}' after a flatten of a map larger than 1x1; "
                                   "only a linear (or act, dropout, identity) can follow it")
        hw, area = x.hw, 1
        if info.spatial:
            assert hw is not None
            hw = _spatial_out(hw, attrs)
            if min(hw) < 1:
                k, s = attrs["kernel"], attrs["stride"]
                raise self.error(path, f"{where}: a {k}x{k} {op} with stride {s} does not fit "
                                       f"a {x.hw[0]}x{x.hw[1]} input (resolution too small)")
        elif op == "gap":
            hw = (1, 1)
        elif op == "adaptive_avgpool":
            hw = (attrs["size"], attrs["size"])
        elif op == "flatten":
            assert hw is not None
            hw, area = None, hw[0] * hw[1]
        elif op == "linear" and x.hw is not None:
            raise self.error(path, f"{where}: linear needs a flattened input (add 'flatten')")
        elif op == "linear" and x.area > 1:
            attrs["in_area"] = x.area
        elif x.area > 1:
            area = x.area
        elif op == "add" and any(t.hw != x.hw for t in inputs):
            raise self.error(path, f"{where}: 'add' joins maps of {[t.hw for t in inputs]}")
        elif op == "mul":
            hws = [t.hw for t in inputs]
            hw = next((h for h in hws if h != (1, 1)), (1, 1))
            if any(h not in ((1, 1), hw) for h in hws):
                raise self.error(path, f"{where}: 'mul' joins maps of {hws}")
        elif op == "concat" and any(t.hw != x.hw for t in inputs):
            raise self.error(path, f"{where}: 'concat' joins maps of {[t.hw for t in inputs]}")
        try:
            chans = rules.apply(self.cv, info.channels, op, attrs, [t.chans for t in inputs],
                                name)
        except rules.ChannelError as e:
            raise self.error(path, f"{where}: {e}") from None
        return _Tensor(name, chans, hw, area)

    def finish(self, logits: _Tensor) -> StageGraph:
        g, cv = self.g, self.cv
        find = cv.uf.find
        roots: dict[int, list[int]] = {}
        for v in range(len(cv.base)):
            roots.setdefault(find(v), []).append(v)
        # a stream: channels joined by an add, a split or a shuffle (a mul, such as a
        # squeeze-excite gate, ties channels without making a stream)
        tied = {find(c) for n in self.order[1:] if g.nodes[n]["op"] != "mul"
                and OPS.get(g.nodes[n]["op"]).channels in _TYING for c in g.nodes[n]["chans"]}
        input_root, logits_root = find(0), find(logits.chans[0])
        if input_root == logits_root:
            raise GraphError("the input channels and the logits are tied together")
        members: dict[int, list[str]] = {}
        for n in self.order:
            for c in dict.fromkeys(find(c) for c in g.nodes[n]["chans"]):
                members.setdefault(c, []).append(n)
        named: dict[int, tuple[str, str]] = {}
        res_names: dict[str, list[int]] = {}
        for root, variables in roots.items():
            producers = [cv.producer[v] for v in variables]
            blocks = {(g.nodes[p]["stage"], g.nodes[p]["block_index"]) for p in producers}
            stage = g.nodes[producers[-1]]["stage"]
            if root == input_root:
                named[root] = ("input", "input")
            elif root == logits_root:
                named[root] = ("logits", "logits")
            elif root in tied or len(blocks) > 1:
                res_names.setdefault(stage, []).append(root)
            else:  # inside one block: named by its first producer
                named[root] = (producers[0], "block")
        for stage, rs in res_names.items():
            for k, root in enumerate(rs):
                named[root] = (f"{stage}.res" if len(rs) == 1 else f"{stage}.res{k}", "res")
        position = {n: i for i, n in enumerate(self.order)}
        groups: dict[str, Group] = {}
        for root in sorted(roots, key=lambda r: position[cv.producer[r]]):
            gid, kind = named[root]
            producers = tuple(cv.producer[v] for v in roots[root])
            positions = tuple((g.nodes[p]["stage"], g.nodes[p]["block_index"], g.nodes[p]["role"])
                              for p in producers)
            groups[gid] = Group(id=gid, base=cv.base[root], kind=kind,
                                stage=g.nodes[producers[-1]]["stage"], producers=producers,
                                members=tuple(members.get(root, ())), positions=positions,
                                multiple=cv.group_multiple(roots[root]))
        for n in self.order:  # channels as group ids, the only form other layers see
            a = g.nodes[n]
            a["groups"] = tuple(named[find(c)][0] for c in a.pop("chans"))
        for n in self.order:
            a = g.nodes[n]
            a["in_groups"] = tuple(gid for i in a["inputs"][:1] for gid in g.nodes[i]["groups"])
        return StageGraph(spec=self.spec, nx=g, groups=groups, order=self.order)


_TYING = (Channels.TIE, Channels.CHUNK, Channels.MIX)
_MAPS = ("gap", "adaptive_avgpool", "flatten")  # ops that need an unflattened input
_AFTER_FLATTEN = ("linear", "act", "dropout", "identity", "droppath")


def _spatial_out(hw: tuple[int, int], attrs: dict[str, Any]) -> tuple[int, int]:
    """Output size of a conv or pool (torch's formula, with pooling's `ceil_mode`: a last
    window that starts inside the input or its left padding counts)."""
    k, s, p, d = attrs["kernel"], attrs["stride"], attrs["padding"], attrs["dilation"]
    span = d * (k - 1) + 1
    ceil = attrs.get("ceil_mode", False)

    def one(n: int) -> int:
        out = (n + 2 * p - span + (s - 1 if ceil else 0)) // s + 1
        if ceil and (out - 1) * s >= n + p:
            out -= 1
        return out

    return one(hw[0]), one(hw[1])
