"""`wtc experiment --time-limit`: what each unit is expected to take (the dry run's pricing) and
whether one may still start before the deadline, so a run ends between units."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wtc.experiment.plan import Plan
from wtc.experiment.status import ledger_status
from wtc.experiment.units import Unit


def estimates(plan: Plan, todo: list[Unit], out: Path, reuse: Sequence[str | Path]
               ) -> dict[str, float]:
    """Each unit's estimated seconds, as `wtc experiment --dry-run` prices them."""
    from wtc.experiment.cost import project, unit_estimates

    return unit_estimates(project(plan), ledger_status(todo, out, reuse))


@dataclass
class Clock:
    """A time limit: when the run must end, and what each unit is expected to take."""

    deadline: float  # time.perf_counter() value
    estimates: dict[str, float]

    def refuses(self, unit: str) -> float | None:
        """The estimate of a unit that must not start now (no longer fits before the
        deadline, or the deadline has passed); None when it may."""
        left = self.deadline - time.perf_counter()
        estimate = self.estimates.get(unit)
        if left <= 0:
            return estimate if estimate is not None else 0.0
        return estimate if estimate is not None and estimate > left else None
