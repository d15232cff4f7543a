"""The widths a slimmable supernet trains and searches over, per group: no torch.

Each free group g runs between min_g = min_multiplier x base and max_g = max_multiplier x base
(both rounded to the divisor). The greedy search moves on `steps` evenly spaced widths between
them; sandwich training draws random widths on the finer divisor grid. Random draws come from a
generator seeded by (seed, step), so every rank draws the same widths and a resumed run draws
what the uninterrupted one would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wtc.graph import StageGraph, count_macs
from wtc.widths import make_divisible
from wtc.widths import steps as group_steps

if TYPE_CHECKING:
    from wtc.optimizers.autoslim import AutoSlimSettings


@dataclass(frozen=True)
class WidthGrid:
    graph: StageGraph
    max: dict[str, int]
    min: dict[str, int]
    steps: dict[str, tuple[int, ...]]  # ascending greedy grid per group, min ... max

    @classmethod
    def build(cls, graph: StageGraph, max_multiplier: float, min_multiplier: float,
              steps: int) -> WidthGrid:
        step = group_steps(graph)  # the divisor, or a grouped conv's group width
        hi = {g: make_divisible(max_multiplier * graph.groups[g].base, step[g])
              for g in graph.free_groups}
        lo = {g: min(hi[g], make_divisible(min_multiplier * graph.groups[g].base, step[g]))
              for g in graph.free_groups}
        grid = {}
        for g in graph.free_groups:
            pts = {make_divisible(lo[g] + (hi[g] - lo[g]) * k / (steps - 1), step[g])
                   for k in range(steps)}
            grid[g] = tuple(sorted(min(hi[g], max(lo[g], p)) for p in pts | {lo[g], hi[g]}))
        return cls(graph, hi, lo, grid)

    @classmethod
    def from_settings(cls, graph: StageGraph, s: AutoSlimSettings) -> WidthGrid:
        return cls.build(graph, s.max_multiplier, s.min_multiplier, s.steps)

    def macs(self, widths: dict[str, int]) -> int:
        return count_macs(self.graph, widths)

    def narrower(self, group: str, width: int) -> int | None:
        """The next greedy step below `width` for `group` (None at its minimum)."""
        k = self.steps[group].index(width)
        return self.steps[group][k - 1] if k > 0 else None

    def random(self, rng: random.Random) -> dict[str, int]:
        """Independent per group, uniform over the divisor multiples in [min_g, max_g] (of the
        group width, for a group of a grouped convolution)."""
        step = group_steps(self.graph)
        out = {}
        for g in self.graph.free_groups:
            div = step[g]
            lo, hi = self.min[g], self.max[g]
            n = (hi - lo) // div
            out[g] = lo + div * rng.randint(0, n) if n > 0 else hi
        return out

    def sandwich(self, seed: int, step: int, samples: int) -> list[dict[str, int]]:
        """The widths of one training step: max, min, then samples - 2 random."""
        rng = random.Random(seed * 1_000_003 + step)
        return [dict(self.max), dict(self.min)] + [self.random(rng) for _ in range(samples - 2)]

    def mean_sandwich_macs(self, seed: int, samples: int, draws: int = 64) -> float:
        """Forward MACs of one image through one step's widths, averaged over draws."""
        total = sum(sum(self.macs(w) for w in self.sandwich(seed, -1 - i, samples))
                    for i in range(draws))
        return total / draws
