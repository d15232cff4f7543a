"""The wall time a resumable unit has spent over all its attempts, kept in its work folder.

A search or training killed mid-way continues from its checkpoints in the next run, and the
time its ledger line records must be what the unit really cost, not only its last attempt:
the search wall-time reductions in a report are built from it. The clock rewrites
`unit_clock.json` (atomically) every `every` seconds while the unit runs and once when the
attempt ends, so a killed attempt loses at most `every` seconds of its count. The folder is
the runner's (`work/INPUT_HASH/`), removed with the clock once the unit is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import TracebackType

from wtc.atomic import atomic_write_text

CLOCK_FILE = "unit_clock.json"


class UnitClock:
    """`with UnitClock(work) as clock: ...`, then `clock.seconds()` (all attempts) and
    `clock.attempt` (1 for a unit that ran in one go)."""

    def __init__(self, work: Path, every: float = 15.0) -> None:
        self.path = work / CLOCK_FILE
        self.every = every
        self.before = 0.0
        self.attempt = 1
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> UnitClock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.before, done = read_clock(self.path.parent)
        self.attempt = done + 1
        self._t0 = time.perf_counter()
        self._write()
        self._thread = threading.Thread(target=self._tick, name="wtc-unit-clock", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._write()

    def seconds(self) -> float:
        """Wall seconds of the earlier attempts (as last written) plus this one's so far."""
        return self.before + time.perf_counter() - self._t0

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._write()

    def _write(self) -> None:
        atomic_write_text(self.path, json.dumps(
            {"seconds": round(self.seconds(), 3), "attempts": self.attempt}) + "\n")


def read_clock(work: Path) -> tuple[float, int]:
    """(seconds, attempts) of the earlier attempts of the unit whose work folder is `work`;
    none recorded, or a file that is not a clock's (written only by `UnitClock`, atomically,
    so that means someone else wrote it): (0, 0), so the unit counts afresh rather than fail
    over its timing."""
    try:
        rec = json.loads((work / CLOCK_FILE).read_text())
        seconds, attempts = float(rec["seconds"]), int(rec["attempts"])
    except (OSError, ValueError, TypeError, KeyError):
        return 0.0, 0
    if seconds < 0 or attempts < 0 or seconds != seconds:  # negative or NaN: not a clock's
        return 0.0, 0
    return seconds, attempts
