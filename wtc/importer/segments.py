"""Traced ops → segments: the stem, the stages (runs of blocks of one class) and the head.

A block is the outermost module below a container (`Sequential`, `ModuleList`, `ModuleDict`),
or among two or more siblings of its class (timm's `b1`, `b2`, ...), that has submodules of its
own (`BasicBlock`, `InvertedResidual`, `CNBlock`, ...). Consecutive
blocks under one container form a stage; a stage is cut where a later block strides or changes
the channels, so each stage runs at one resolution and width (MobileNet's one `Sequential` of
17 blocks becomes its 7 stages). Ops outside any block are glue: the stem before the first
stage, the head after the last, a depth-1 stage in between. Every segment must read exactly
one tensor (its predecessor's last op); a segment that reads more (DenseNet's growing concat)
is merged into its predecessor until it does, so the import stays exact at the cost of
structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

from wtc.importer.trace import Op

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class Segment:
    """Consecutive ops: one block (`block` = its module path) or glue (`block` = None)."""

    ops: list[Op]
    block: str | None = None
    cls: str = ""
    parent: str = ""

    @property
    def last(self) -> str:
        return self.ops[-1].name


@dataclass
class Stage:
    name: str
    blocks: list[Segment] = field(default_factory=list)
    cls: str = ""


def block_modules(root: nn.Module) -> dict[str, tuple[str, str]]:
    """Module path → (class name, parent path) of every block."""
    found: dict[str, tuple[str, str]] = {}

    def visit(m: nn.Module, path: str, parent_is_container: bool) -> None:
        kinds = [type(c) for c in m.children() if any(True for _ in c.children())]
        for name, child in m.named_children():
            p = f"{path}.{name}" if path else name
            repeated = kinds.count(type(child)) > 1  # b1, b2, ... attributes of one class
            if isinstance(child, _CONTAINERS) or (
                    (parent_is_container or repeated) and _blocky(child) and _wraps(child)):
                visit(child, p, True)
            elif (parent_is_container or repeated) and _blocky(child) and not _wraps(child):
                found[p] = (type(child).__name__, path)
            else:
                visit(child, p, False)

    visit(root, "", isinstance(root, _CONTAINERS))
    return found


def _blocky(m: nn.Module) -> bool:
    """Has submodules of its own (a batch norm with an activation inside is one op)."""
    return any(True for _ in m.children()) and not isinstance(m, nn.modules.batchnorm._BatchNorm)


def _wraps(m: nn.Module) -> bool:
    """Holds two or more blocks of one class and no layer of its own (timm's stage modules:
    `b1`, `b2`, ..., or a `blocks` Sequential): then those are the blocks, not it."""
    if any(not isinstance(c, (*_CONTAINERS, nn.Identity)) and not _blocky(c)
           for c in m.children()):
        return False
    seen: dict[type, int] = {}

    def count(x: nn.Module) -> None:
        for child in x.children():
            if isinstance(child, _CONTAINERS):
                count(child)
            elif _blocky(child):
                seen[type(child)] = seen.get(type(child), 0) + 1

    count(m)
    return any(n > 1 for n in seen.values())


def segment(ops: list[Op], root: nn.Module) -> list[Segment]:
    """The ops cut into block and glue segments, each reading one tensor."""
    blocks = block_modules(root)
    _nest_concats(ops)
    segs: list[Segment] = []
    for op in ops:
        key = next((p for p in op.stack if p in blocks), None)
        if key is None and op.path in blocks:
            key = op.path
        if segs and segs[-1].block == key:
            segs[-1].ops.append(op)
            continue
        cls, parent = blocks[key] if key else ("", "")
        if key is not None and any(s.block == key for s in segs):
            key, cls, parent = None, "", ""  # a block run twice or interleaved: glue
        if segs and key is None and segs[-1].block is None:
            segs[-1].ops.append(op)
            continue
        segs.append(Segment([op], key, cls, parent))
    return _merge_leaky(_hand_back(segs))


def _nest_concats(ops: list[Op]) -> None:
    """cat(a, b, c) after P = cat(a, b) becomes cat(P, c): DenseNet's layers each concatenate
    everything before them; nested, each layer adds one part to its input."""
    flat_of: dict[str, tuple[str, ...]] = {}
    by_flat: dict[tuple[str, ...], str] = {}
    for op in ops:
        if op.op != "concat":
            continue
        flat = tuple(p for i in op.inputs for p in flat_of.get(i, (i,)))
        last = flat_of.get(op.inputs[-1], (op.inputs[-1],))
        head = flat[:len(flat) - len(last)]
        if len(op.inputs) > 2 and head in by_flat:
            op.inputs = [by_flat[head], op.inputs[-1]]
        flat_of[op.name] = flat
        by_flat.setdefault(flat, op.name)


def _hand_back(segs: list[Segment]) -> list[Segment]:
    """An op that starts a segment but reads only the segment before it, and more of it than
    its output (DenseNet's concat of a layer's input and its new features, traced in the next
    layer), belongs at the end of that segment."""
    for i in range(1, len(segs)):
        prev, seg = segs[i - 1], segs[i]
        own = {o.name for o in prev.ops}
        while len(seg.ops) > 1:
            first = seg.ops[0]
            reads = set(first.inputs)
            if not reads <= own | {_input_of(segs, i - 1)} or reads <= {prev.last}:
                break
            first.moved = True
            prev.ops.append(seg.ops.pop(0))
            own.add(first.name)
    return segs


def _input_of(segs: list[Segment], i: int) -> str:
    return segs[i - 1].last if i > 0 else "input"


def _merge_leaky(segs: list[Segment]) -> list[Segment]:
    """Merge a segment into its predecessor while it reads anything but that one's output."""
    out: list[Segment] = []
    for seg in segs:
        out.append(seg)
        while len(out) > 1 and not _reads_one(out[-1], out[-2].last):
            tail = out.pop()
            prev = out.pop()
            out.append(Segment(prev.ops + tail.ops))
    return out


def _reads_one(seg: Segment, source: str) -> bool:
    own = {o.name for o in seg.ops}
    return all(i in own or i == source for o in seg.ops for i in o.inputs)


def stages(segs: list[Segment]) -> tuple[list[Op], list[Stage], list[Op]]:
    """(stem ops, stages, head ops)."""
    first = next((i for i, s in enumerate(segs) if s.block), None)
    if first is None:  # no blocks (VGG): a stage per resolution, the classifier the head
        ops = [o for s in segs for o in s.ops]
        cut = _head_start(ops)
        return [], _by_resolution(ops[:cut]), ops[cut:]
    last = max(i for i, s in enumerate(segs) if s.block)
    stem = [o for s in segs[:first] for o in s.ops]
    head = [o for s in segs[last + 1:] for o in s.ops]
    out: list[Stage] = []
    for seg in segs[first:last + 1]:
        prev = out[-1].blocks[-1] if out else None
        if (seg.block and prev is not None and prev.block and out[-1].cls == seg.cls
                and prev.parent == seg.parent and not _strides(seg)
                and (seg.ops[-1].channels == prev.ops[-1].channels or _grows(seg, prev))):
            out[-1].blocks.append(seg)
            continue
        out.append(Stage("", [seg], seg.cls))
    _name_stages(out)
    return stem, out, head


def _grows(seg: Segment, prev: Segment) -> bool:
    """A dense layer: it ends in a concat of its input and its new features."""
    return seg.ops[-1].op == "concat" and prev.last in seg.ops[-1].inputs


def _by_resolution(ops: list[Op]) -> list[Stage]:
    """Ops without blocks, cut where the resolution drops (each cut reads one tensor)."""
    pieces: list[list[Op]] = [[]]
    for op in ops:
        prev = pieces[-1][-1] if pieces[-1] else None
        if prev is not None and op.hw != prev.hw and op.inputs == [prev.name] and all(
                i in {o.name for o in pieces[-1]} or i == _before(pieces) for o in pieces[-1]
                for i in o.inputs):
            pieces.append([])
        pieces[-1].append(op)
    out = [Stage("", [Segment(p)]) for p in pieces]
    _name_stages(out)
    return out


def _before(pieces: list[list[Op]]) -> str:
    return pieces[-2][-1].name if len(pieces) > 1 else "input"


def _strides(seg: Segment) -> bool:
    return any(o.attrs.get("stride", 1) > 1 for o in seg.ops)


def _head_start(ops: list[Op]) -> int:
    """Where the classifier starts: the first pool to a fixed size or flatten after which no
    op works on a map any more."""
    cut = len(ops)
    for i in range(len(ops) - 1, -1, -1):
        if ops[i].op in ("gap", "adaptive_avgpool", "flatten") or ops[i].hw is None:
            cut = i
        else:
            break
    return max(1, cut)


def _prefix(ops: list[Op]) -> str:
    """The module path all ops of a glue segment share (a transition: its Sequential)."""
    parts = [o.path.split(".") for o in ops if o.path]
    common: list[str] = []
    for group in zip(*parts, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    return ".".join(common) or (ops[0].path if ops else "")


def _name(path: str, fallback: str) -> str:
    name = re.sub(r"\W", "_", path).strip("_") or fallback
    return f"s_{name}" if name[0].isdigit() or name in ("stem", "head", "input") else name


def _name_stages(out: list[Stage]) -> None:
    used: set[str] = set()
    for st in out:
        first = st.blocks[0]
        whole = first.block and all(b.parent == first.parent for b in st.blocks) and \
            sum(1 for s in out for b in s.blocks if b.parent == first.parent) == len(st.blocks)
        path = first.parent if whole and first.parent else (first.block or _prefix(first.ops))
        name = _name(path, "stage")
        k = 1
        while name in used:
            k += 1
            name = f"{_name(path, 'stage')}_{k}"
        used.add(name)
        st.name = name
