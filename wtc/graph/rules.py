"""Channel rules: how each channel kind of the op table (`wtc.spec.ops.Channels`) maps the
channel variables of its inputs to those of its output, and which ties and divisibility
constraints it adds. The compiler calls `apply` once per op; width groups are the union-find
classes of the variables, and a group's `multiple` is the lcm of its variables' constraints.

A tensor's channels are a tuple of variables, one per concatenated part. The rules:

    NEW      a new variable (conv, linear); conv `groups` g: every input part and the output
             are multiples of g
    SAME     the input's parts (bn, ln, act, pools, scale, droppath, ...)
    GROUPED  the input's parts, each a multiple of the group width (dwconv: 1, gconv: w)
    TIE      all inputs part by part (add, mul): tied, so they are one group each
    CONCAT   the parts of all inputs, in order
    CHUNK    split into k chunks: the input's parts in k equal runs, run j tied to run 0
             part by part, so every chunk has the same channels at every width; the output
             is run `chunk`. A single conv output cannot be split (its half is not a width
             variable): split a concat, or a shuffle of one
    MIX      shuffle over g groups interleaves channels, so all its input parts are tied
             into one group, whose total must stay a multiple of g
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wtc.graph.groups import UnionFind
from wtc.spec.ops import Channels


class ChannelError(ValueError):
    """Channels that cannot fit together; the compiler adds the location."""


class ChannelVars:
    """Channel variables: a base width each, the op that produced it, union-find ties and
    divisibility constraints."""

    def __init__(self) -> None:
        self.uf = UnionFind()
        self.base: list[int] = []
        self.producer: list[str] = []
        self.multiple: dict[int, int] = {}  # variable → the lcm of its constraints

    def new(self, base: int, producer: str) -> int:
        self.base.append(base)
        self.producer.append(producer)
        return self.uf.new()

    def width(self, v: int) -> int:
        return self.base[self.uf.find(v)]

    def describe(self, chans: Sequence[int]) -> str:
        return "+".join(str(self.width(c)) for c in chans)

    def tie(self, a: int, b: int, what: str) -> None:
        if self.width(a) != self.width(b):
            raise ChannelError(f"{what}: {self.width(a)} and {self.width(b)} channels must "
                               "match")
        self.uf.union(a, b)

    def require_multiple(self, v: int, m: int, what: str) -> None:
        if m <= 1:
            return
        if self.width(v) % m:
            raise ChannelError(f"{what} needs channels that are a multiple of {m}, got "
                               f"{self.width(v)}")
        self.multiple[v] = math.lcm(self.multiple.get(v, 1), m)

    def group_multiple(self, variables: Sequence[int]) -> int:
        return math.lcm(1, *(self.multiple.get(v, 1) for v in variables))


def apply(cv: ChannelVars, kind: Channels, op: str, attrs: dict[str, Any],
          inputs: Sequence[tuple[int, ...]], name: str) -> tuple[int, ...]:
    """The output channel variables of one op; raises ChannelError when they cannot fit."""
    x = inputs[0]
    if kind is Channels.NEW:
        out = cv.new(attrs["out"], name)
        g = attrs.get("num_groups", 1)
        for v in (*x, out):
            cv.require_multiple(v, g, f"'{op}' with groups={g}")
        return (out,)
    if kind is Channels.GROUPED:
        w = attrs["group_width"]
        for v in x:
            cv.require_multiple(v, w, f"'{op}' with group_width={w}")
        if attrs.get("out") is not None and attrs["out"] != sum(cv.width(v) for v in x):
            raise ChannelError(f"'{op}' keeps its channels (the number of groups follows the "
                               f"width), so out={attrs['out']} must equal its input's "
                               f"{cv.describe(x)}")
        return x
    if kind is Channels.TIE:
        for other in inputs[1:]:
            if len(other) != len(x) or any(cv.width(a) != cv.width(b)
                                           for a, b in zip(x, other, strict=True)):
                raise ChannelError(f"'{op}' joins {cv.describe(x)} and {cv.describe(other)} "
                                   "channels; they must match")
            for a, b in zip(x, other, strict=True):
                cv.uf.union(a, b)
        return x
    if kind is Channels.CONCAT:
        return tuple(c for t in inputs for c in t)
    if kind is Channels.CHUNK:
        return _chunk(cv, x, attrs["chunks"], attrs["chunk"])
    if kind is Channels.MIX:
        g = attrs["num_groups"]
        for v in x[1:]:
            cv.tie(x[0], v, f"'{op}' interleaves the parts of its input, so they")
        cv.require_multiple(x[0], g // math.gcd(len(x), g), f"'{op}' over {g} groups")
        return x
    return x  # SAME


def _chunk(cv: ChannelVars, x: tuple[int, ...], k: int, i: int) -> tuple[int, ...]:
    if i >= k:
        raise ChannelError(f"'split' into {k} chunks has no chunk {i} (chunks count from 0)")
    if len(x) % k:
        raise ChannelError(
            f"'split' into {k} chunks needs its input in {k} equal parts along concat "
            f"boundaries (a concat or a shuffle of {k} branches); it gets {cv.describe(x)}")
    r = len(x) // k
    for j in range(1, k):
        for a, b in zip(x[:r], x[j * r:(j + 1) * r], strict=True):
            cv.tie(a, b, f"'split' into {k} equal chunks: chunk parts")
    return x[i * r:(i + 1) * r]
