"""Which of a plan's units a ledger already holds, without running anything.

A unit is recorded when the ledger has a line with its id and its input hash, which covers its
parameters and its upstream units' recorded outputs; a unit downstream of one still to run is
still to run (its inputs are not known yet). The dry run prints this, so a user resuming a
half-finished experiment sees the remaining cost, and tests use it to check that a committed
experiment resumes with nothing to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wtc.experiment.ledger import Ledger
from wtc.experiment.units import Unit


@dataclass
class LedgerStatus:
    recorded: list[str] = field(default_factory=list)
    to_run: list[str] = field(default_factory=list)


def ledger_status(units: list[Unit], out_dir: str | Path) -> LedgerStatus:
    """Split `units` (in dependency order) into those the ledger in `out_dir` records and
    those a run would still execute."""
    done = Ledger(out_dir).done()
    finished: dict[str, str] = {}  # unit id → its recorded output hash
    status = LedgerStatus()
    for u in units:
        row = None
        if all(d in finished for d in u.deps):
            row = done.get((u.id, u.input_hash({d: finished[d] for d in u.deps})))
        if row is None:
            status.to_run.append(u.id)
        else:
            finished[u.id] = row["output_hash"]
            status.recorded.append(u.id)
    return status
