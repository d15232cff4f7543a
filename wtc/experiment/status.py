"""Which of a plan's units a ledger already holds, without running anything.

A unit is recorded when the ledger has a line with its id and its input hash, which covers its
parameters and its upstream units' recorded outputs; a unit downstream of one still to run is
still to run (its inputs are not known yet). Two more kinds cost nothing to run: units that
`--reuse` folders hold (copied, not run) and units computing the same as another unit of the
plan (its content key; the driver runs one and shares it). The dry run prints this, so a user
resuming a half-finished experiment, or a second plan built on a first, sees the remaining
cost; tests use it to check that a committed experiment resumes with nothing to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wtc.errors import ConfigError
from wtc.experiment.ledger import Ledger
from wtc.experiment.ledger_check import is_escape
from wtc.experiment.unit_clock import read_clock
from wtc.experiment.units import Unit
from wtc.paths import PathError

Imports = dict[tuple[str, str], tuple[dict[str, Any], Ledger]]
LOCK_FILE = ".lock"  # in an experiment folder: held by its one driver (`runner._lock`)


@dataclass
class LedgerStatus:
    hashes: dict[str, str] = field(default_factory=dict)  # recorded unit → its input hash
    to_run: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)  # from a --reuse folder's ledger
    shared: dict[str, str] = field(default_factory=dict)  # unit → the unit computing the same
    # recorded or copied unit → (its recorded training MACs, seconds): what it measurably cost
    measured: dict[str, tuple[int, float]] = field(default_factory=dict)
    # each of a unit's `rate_keys` (search/method/network, kind/method, kind) → (training MACs,
    # seconds) summed over what the --reuse folders ran: the rate a kind this plan has not run
    # yet is priced at (a sibling plan of the same network, say)
    reference: dict[str, tuple[int, float]] = field(default_factory=dict)
    # unit to run → the seconds its interrupted attempts spent: it has a work folder (its
    # checkpoints, `work/INPUT_HASH/`) and continues there instead of starting over
    interrupted: dict[str, float] = field(default_factory=dict)
    running: bool = False  # a driver holds the folder's lock now: those units are in flight

    @property
    def recorded(self) -> list[str]:
        """The units the ledger records, in dependency order."""
        return list(self.hashes)

    def of(self, unit: str) -> str:
        """'recorded', 'copied', 'shared' or 'to run'."""
        if unit in self.shared:
            return "shared"
        if unit in self.hashes:
            return "recorded"
        return "copied" if unit in self.copied else "to run"


def reusable(folders: Sequence[str | Path], out: Path) -> tuple[Imports, list[str]]:
    """(unit, input hash) → (line, its ledger) over the `--reuse` folders, first folder first,
    and a warning per damaged line of theirs (skipped: those units run here instead); lines
    whose artifacts are gone are left out (they could not be copied)."""
    found: Imports = {}
    warnings: list[str] = []
    for folder in folders:
        other = Ledger(folder)
        if not other.path.is_file():
            raise ConfigError(f"--reuse {folder}: no ledger.jsonl there (not an experiment "
                              "folder)")
        if Path(folder).resolve() == out.resolve():
            continue
        done = other.done()
        escapes = [f"line {n}: {why}" for n, why in other.damaged if is_escape(why)]
        if escapes:
            raise PathError(f"--reuse {folder}: its ledger names files outside its folder, "
                            f"refused ({'; '.join(escapes[:3])})")
        warnings += [f"--reuse {w}" for w in other.warnings()]
        for key, row in done.items():
            if other.artifacts_present(row):  # PathError for a symlink out of the folder
                found.setdefault(key, (row, other))
    return found, warnings


def ledger_status(units: list[Unit], out_dir: str | Path,
                  reuse: Sequence[str | Path] = ()) -> LedgerStatus:
    """Split `units` (in dependency order, as `check_dag` holds them) into those the ledger in
    `out_dir` records, those `reuse` folders hold, those sharing another unit's computation,
    and those a run would still execute (what the driver does, in its order of precedence);
    the input hash of each recorded unit (what a run's line names as taken from the ledger)."""
    done = Ledger(out_dir).done()
    imports = reusable(reuse, Path(out_dir))[0] if reuse else {}
    known: dict[str, dict[str, Any]] = {}  # unit id → its line (outputs, output hash)
    first: dict[str, str] = {}  # content key → the first unit with it
    # every timed line of theirs, copyable or not (a training's checkpoints are not kept, yet
    # its seconds still say how fast this machine trains this network)
    ran = (row for folder in reuse if Path(folder).resolve() != Path(out_dir).resolve()
           for row in Ledger(folder).done().values())
    status = LedgerStatus(reference=_rates(ran), running=driver_running(Path(out_dir)))
    for u in units:
        if not all(d in known for d in u.deps):
            status.to_run.append(u.id)
            continue
        ih = u.input_hash({d: known[d]["output_hash"] for d in u.deps})
        key = u.content_key({d: known[d]["outputs"] for d in u.deps})
        row = done.get((u.id, ih))
        if row is not None:
            status.hashes[u.id] = ih
        elif (u.id, ih) in imports:
            row = imports[(u.id, ih)][0]
            status.copied.append(u.id)
        elif key in first:
            status.shared[u.id] = first[key]
            row = known.get(first[key])
        else:
            status.to_run.append(u.id)
            work = Path(out_dir) / "work" / ih
            if work.is_dir():
                status.interrupted[u.id] = read_clock(work)[0]
        first.setdefault(key, u.id)
        if row is not None:
            known[u.id] = row
            if u.id not in status.shared:
                status.measured[u.id] = (int(row.get("train_macs") or 0),
                                         float(row.get("seconds") or 0.0))
    return status


def rate_keys(unit: str, kind: str) -> tuple[str, ...]:
    """The rates a unit can be priced at, finest first: a search's method and the network it
    searches (`search/dmcp/half_width_14px`: a proxy's small convolutions run at a fraction of
    the target's MACs/s), its kind and method's (`search/dmcp`: DMCP's supernet steps run at
    half MorphNet's MACs/s on one network), and its kind's."""
    parts = unit.split("/")
    if len(parts) < 2:
        return (kind,)
    by_method = f"{kind}/{parts[1]}"
    if kind == "search" and len(parts) > 2:
        return "/".join(parts[:3]), by_method, kind
    return by_method, kind


def _rates(rows: Any) -> dict[str, tuple[int, float]]:
    """Per each of `rate_keys`, (training MACs, seconds) over the lines that trained and were
    timed (lines copied from elsewhere, which carry no seconds of their own, add nothing)."""
    rates: dict[str, tuple[int, float]] = {}
    for row in rows:
        macs, seconds = int(row.get("train_macs") or 0), float(row.get("seconds") or 0.0)
        if macs > 0 and seconds > 0 and not row.get("reused"):
            for key in set(rate_keys(str(row.get("unit", "")), row["kind"])):
                m, sec = rates.get(key, (0, 0.0))
                rates[key] = (m + macs, sec + seconds)
    return rates


def driver_running(out: Path) -> bool:
    """Whether a `wtc experiment` driver holds `out`'s lock (`runner._lock`) now; asks without
    taking it and without creating the lock file (a dry run writes nothing)."""
    import fcntl

    try:
        f = open(out / LOCK_FILE)  # noqa: SIM115 - closed below
    except OSError:  # no lock file: no driver has run here (or it cannot be read: say no)
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
