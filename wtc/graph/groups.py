"""Width groups: channel counts that must be equal, found by union-find over channel variables.

Every conv/linear output starts a variable; an add or mul unites its inputs' variables; pass-
through ops forward them; concat outputs are lists of variables (sums, not variables); split
and shuffle unite the parts they must keep equal (`wtc.graph.rules`). A group is a union-find
class, named by where its producing layers sit, with the divisibility its grouped convs and
shuffles need (`multiple`).
"""

from __future__ import annotations

from dataclasses import dataclass


class UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def new(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the earliest variable stays the root


@dataclass(frozen=True)
class Group:
    """A free (or fixed) channel count and the layers that share it.

    kind: "block" (produced inside one block; named by its first producer), "res" (tied across
    blocks, or by an add, split or shuffle: a stream, named `<stage>.res`), "input" or "logits"
    (fixed). A mul (a squeeze-excite gate) ties without making a stream.
    """

    id: str
    base: int
    kind: str
    stage: str  # stage of its last producer ("stem", a stage name, or "head")
    producers: tuple[str, ...]  # conv/linear nodes whose output channels this group is
    members: tuple[str, ...]  # every node whose output carries this group
    positions: tuple[tuple[str, int, str], ...]  # (stage, block, role) of each producer
    # its channels must stay a multiple of this (grouped convs, shuffles); rounding of any
    # kind rounds the group to a multiple of lcm(divisor, multiple): see `step`
    multiple: int = 1

    @property
    def fixed(self) -> bool:
        return self.kind in ("input", "logits")

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(role for _, _, role in self.positions))
