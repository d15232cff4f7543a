"""The driver: runs a plan's units in dependency order on a backend, skips what the ledger
already holds, and alone appends to the ledger.

A unit is released when all its upstream units have finished; its input hash is then known
(plan section + upstream output hashes). If the ledger has a line for (unit, input hash) the
unit is skipped and its recorded outputs are used, so a rerun resumes where a killed run
stopped, and a changed plan reruns exactly the units whose inputs changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wtc.errors import ConfigError, PlanError, UserInputError, WriteError, WtcError
from wtc.experiment.backends import check_backend, make_backend
from wtc.experiment.ledger import Ledger
from wtc.experiment.ledger_check import is_escape
from wtc.experiment.plan import Plan
from wtc.experiment.plan_cost import priced
from wtc.experiment.units import Unit, check_dag, curve_points, expand, rows
from wtc.paths import PathError
from wtc.widths import make_folders


class UnitFailed(WtcError):
    """A unit raised an error that is not the user's to fix (a bug or an environment
    failure); the message names the unit."""


@dataclass
class RunSummary:
    out_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reused: dict[str, str] = field(default_factory=dict)  # unit → the unit it shares outputs with
    imported: list[str] = field(default_factory=list)  # from another experiment's ledger
    seconds: float = 0.0
    unit_seconds: dict[str, float] = field(default_factory=dict)
    stopped: bool = False  # stopped early (max_units)
    warnings: list[str] = field(default_factory=list)  # damaged ledger lines skipped

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out_dir), "ran": self.ran, "skipped": self.skipped,
                "reused": self.reused, "imported": self.imported,
                "seconds": round(self.seconds, 3), "stopped": self.stopped,
                "warnings": self.warnings}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_experiment(plan: Plan | None, out_dir: str | Path, *, units: Sequence[Unit] | None = None,
                   backend: str = "local", jobs: int = 1, threads: int | None = None,
                   device: str = "cpu", address: str | None = None, progress: str = "none",
                   max_units: int | None = None, reuse: Sequence[str | Path] = (),
                   on_unit: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """Run `plan` (or explicit `units`) into `out_dir`; returns what ran and what was skipped.

    jobs: units in flight; threads: torch threads per unit (default: cores ÷ jobs).
    max_units: stop after running that many units (what a kill between units leaves).
    reuse: other experiment folders; a unit recorded there with the same id and input hash
    (and its artifacts) is copied into this ledger instead of run (a second plan that shares
    the first's searches).
    on_unit(line): called after each ledger line is written (the progress display uses it).
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    if device not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"device must be cpu, cuda or auto, not {device!r}")
    check_backend(backend, address)
    _Display(progress, 0)  # a bad progress mode, before anything is written
    todo = list(units) if units is not None else expand(plan)  # type: ignore[arg-type]
    if plan is not None and units is None:
        check_data(plan)
    check_dag(todo)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    imports = _imports(reuse, out)
    created = make_folders(out)
    threads = threads or max(1, cores() // jobs)
    ledger = Ledger(out)
    try:
        return _run(plan, todo, ledger, backend, jobs, threads, device, address, progress,
                    max_units, on_unit, imports)
    except WriteError:
        if created is not None and not ledger.units():  # nothing to resume: no partial folder
            shutil.rmtree(created, ignore_errors=True)
        raise


def _run(plan: Plan | None, todo: list[Unit], ledger: Ledger, backend: str, jobs: int,
         threads: int, device: str, address: str | None, progress: str,
         max_units: int | None, on_unit: Callable[[dict[str, Any]], None] | None,
         imports: dict[tuple[str, str], tuple[dict[str, Any], Ledger]]) -> RunSummary:
    out = ledger.dir
    with _lock(out):
        damaged = ledger.warnings()  # before the first write cuts off a torn last line
        ledger.start_run(**_run_info(plan, todo, backend, jobs, threads))
        gpus = 1.0 if device == "cuda" else 0.0
        be = make_backend(backend, jobs=jobs, threads=threads, address=address, gpus=gpus)
        summary = RunSummary(out_dir=out, warnings=damaged)
        t0 = time.perf_counter()
        with _Display(progress, len(todo)) as display:
            try:
                _drive(todo, ledger, be, summary, threads, device, max_units, display, on_unit,
                       imports)
            finally:
                be.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def _imports(folders: Sequence[str | Path], out: Path
             ) -> dict[tuple[str, str], tuple[dict[str, Any], Ledger]]:
    """(unit, input hash) → (line, its ledger) over the `reuse` folders, first folder first;
    lines whose artifacts are gone are left out (they could not be copied)."""
    found: dict[tuple[str, str], tuple[dict[str, Any], Ledger]] = {}
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
        for key, row in done.items():
            if other.artifacts_present(row):  # PathError for a symlink out of the folder
                found.setdefault(key, (row, other))
    return found


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One driver per experiment folder (the ledger has one writer)."""
    import fcntl

    try:
        f = open(out / ".lock", "w")  # noqa: SIM115 - closed below
    except OSError as e:
        raise WriteError(out / ".lock", e) from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"another `wtc experiment` is running on {out}; wait for it or "
                              "use another --out") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_data(plan: Plan) -> None:
    """Read the plan's dataset once, so a missing one fails before any unit runs; check every
    search's settings and data as they will run on each source."""
    from wtc.data import DataConfig, make_data
    from wtc.experiment.plan_check import check_sources

    check_sources(plan)
    s = plan.target.spec
    try:
        make_data(DataConfig(**plan.eval_data), channels=s.input.channels,
                  resolution=s.input.resolution, num_classes=s.classes)
    except UserInputError as e:
        raise PlanError(str(e), key="data", file=plan.file) from None


def _run_info(plan: Plan | None, units: list[Unit], backend: str, jobs: int, threads: int
              ) -> dict[str, Any]:
    info: dict[str, Any] = {"units": [u.id for u in units], "backend": backend, "jobs": jobs,
                            "threads": threads}
    if plan is not None:
        info.update(plan=plan.name, plan_hash=plan.hash(), file=plan.file, seeds=plan.seeds,
                    rows=[r.to_json() for r in rows(plan)],
                    target={"spec": plan.target.spec.name, "hash": plan.target.graph.spec_hash,
                            "macs": plan.target_macs, "base_macs": plan.base_macs, **priced(plan)},
                    proxies={n: s.projection for n, s in plan.proxies.items()},
                    classes={s.name: s.spec.classes for s in plan.sources},
                    **({"curve": curve_points(plan)} if plan.model.curve else {}),
                    methods=plan.methods)
    return info


def _drive(todo: list[Unit], ledger: Ledger, be: Any, summary: RunSummary, threads: int,
           device: str, max_units: int | None, display: _Display,
           on_unit: Callable[[dict[str, Any]], None] | None,
           imports: dict[tuple[str, str], tuple[dict[str, Any], Ledger]]) -> None:
    done = ledger.done()
    state = _State(ledger)
    pending = list(todo)
    users: dict[str, list[Unit]] = {}  # unit id → the units that consume its outputs
    for u in todo:
        for d in u.deps:
            users.setdefault(d, []).append(u)
    running: dict[Future[dict[str, Any]], tuple[Unit, str, str]] = {}  # unit, hash, key
    failure: tuple[Unit, dict[str, Any]] | None = None
    stop = False
    while True:
        changed = True
        while changed:  # release ready units; skipping one may make others ready
            changed = False
            for u in sorted(pending, key=_priority):
                if not all(d in state.finished for d in u.deps):
                    continue
                ih, key = state.hashes(u)
                row = done.get((u.id, ih))
                twin = state.by_content.get(key)
                if row is not None and (ledger.artifacts_present(row) or _consumed(
                        u, row, users.get(u.id, []), done, state.finished)):
                    state.finish(u, row, key)
                    summary.skipped.append(u.id)
                    display.advance(u.id, skipped=True)
                elif (u.id, ih) in imports:  # done by another experiment: copy it here
                    state.finish(u, ledger.import_line(*imports[(u.id, ih)]), key)
                    summary.imported.append(u.id)
                    display.advance(u.id, skipped=True)
                elif twin is not None:  # same computation as a finished unit: share it
                    state.finish(u, ledger.reuse(u, ih, twin), key)
                    summary.reused[u.id] = twin["unit"]
                    display.advance(u.id, reused=True)
                elif key in state.in_flight or stop or failure is not None or len(
                        running) >= be.slots:
                    continue  # a twin is running (reused when it ends), or no free slot
                else:
                    display.started(u.id)
                    running[be.submit(_payload(u, state.finished, ledger, threads, device,
                                               be.shared_fs))] = (u, ih, key)
                    state.in_flight.add(key)
                pending.remove(u)
                changed = True
        if not running:
            break
        ready, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for fut in ready:
            u, ih, key = running.pop(fut)
            state.in_flight.discard(key)
            result = fut.result()
            if "error" in result:
                failure = failure or (u, result["error"])
                display.advance(u.id, failed=True)
                continue
            line = ledger.record(u, ih, result)
            if u.kind == "train":  # recorded: its resumable checkpoints are not needed now
                shutil.rmtree(ledger.dir / "work" / ih, ignore_errors=True)
            state.finish(u, line, key)
            summary.ran.append(u.id)
            summary.unit_seconds[u.id] = line["seconds"]
            display.advance(u.id)
            if on_unit is not None:
                on_unit(line)
            if max_units is not None and len(summary.ran) >= max_units:
                stop = True
                summary.stopped = True
    if failure is not None:
        _raise(failure, ledger.dir)


class _State:
    """What the driver knows while it runs: finished units' ledger lines, and which content
    keys are finished (with artifacts on disk, so they can be shared) or running."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.finished: dict[str, dict[str, Any]] = {}  # unit id → its ledger line
        self.by_content: dict[str, dict[str, Any]] = {}  # content key → a finished line
        self.in_flight: set[str] = set()

    def hashes(self, u: Unit) -> tuple[str, str]:
        lines = [self.finished[d] for d in u.deps]
        return (u.input_hash({d: r["output_hash"] for d, r in zip(u.deps, lines, strict=True)}),
                u.content_key({d: r["outputs"] for d, r in zip(u.deps, lines, strict=True)}))

    def finish(self, u: Unit, line: dict[str, Any], key: str) -> None:
        self.finished[u.id] = line
        if self.ledger.artifacts_present(line):
            self.by_content.setdefault(key, line)


def _consumed(u: Unit, row: dict[str, Any], users: list[Unit],
              done: dict[tuple[str, str], dict[str, Any]],
              finished: dict[str, dict[str, Any]]) -> bool:
    """A recorded unit whose artifacts are gone (a fresh clone holds the ledger, not the
    weights) still counts as done when every unit that consumes it is recorded with exactly
    its outputs: nothing downstream needs the artifacts again."""
    if not users:
        return False
    for v in users:
        if any(d != u.id and d not in finished for d in v.deps):
            return False
        hashes = {d: row["output_hash"] if d == u.id else finished[d]["output_hash"]
                  for d in v.deps}
        if (v.id, v.input_hash(hashes)) not in done:
            return False
    return True


# among ready units, finish rows before starting new searches, and search on the target before
# the proxies: an interrupted or partial run then holds complete rows (widths → trainings →
# evaluations), the direct ones (which every proxy row is compared with) first
_KIND_RANK = {"eval": 0, "train": 1, "transfer": 2, "search": 3}


def _priority(u: Unit) -> tuple[int, int]:
    return _KIND_RANK.get(u.kind, 4), 0 if u.id.endswith("/target") else 1


def _payload(u: Unit, finished: dict[str, dict[str, Any]], ledger: Ledger, threads: int,
             device: str, shared_fs: bool) -> dict[str, Any]:
    inputs = {d: finished[d]["outputs"] for d in u.deps}
    artifacts = {d: ledger.read_artifacts(finished[d]) for d in u.deps
                 if finished[d].get("artifacts")}
    work = None
    if shared_fs and u.kind == "train":  # checkpoints, so a killed training continues
        ih = u.input_hash({d: finished[d]["output_hash"] for d in u.deps})
        work = str((ledger.dir / "work" / ih).resolve())
    return {"id": u.id, "kind": u.kind, "params": u.params, "inputs": inputs,
            "artifacts": artifacts, "threads": threads, "device": device, "work_dir": work}


def _raise(failure: tuple[Unit, dict[str, Any]], out: Path) -> None:
    u, err = failure
    if err.get("user"):
        raise UserInputError(f"unit '{u.id}' failed: {err['message']}")
    log = out / "failed.log"
    from wtc.widths import atomic_write_text

    atomic_write_text(log, f"unit {u.id}\n{err.get('traceback', '')}")
    raise UnitFailed(f"unit '{u.id}' failed with {err['type']}: {err['message']} (traceback "
                     f"in {log}; finished units are in the ledger, rerun to resume)")


class _Display:
    """A rich progress bar over units on a terminal, plain lines with progress="plain",
    nothing otherwise."""

    def __init__(self, mode: str, total: int) -> None:
        if mode == "auto":
            mode = "rich" if sys.stdout.isatty() else "none"
        if mode not in ("rich", "plain", "none"):
            raise ConfigError(f"progress must be auto, rich, plain or none, not {mode!r}")
        self.mode, self.total, self.count = mode, total, 0
        self._bar: Any = None
        self._task: Any = None
        self._running: list[str] = []

    def __enter__(self) -> _Display:
        if self.mode == "rich":
            from wtc.trainer.progress import rich_bar

            self._bar = rich_bar(remaining=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("units", total=self.total, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def started(self, uid: str) -> None:
        self._running.append(uid)
        self._update()

    def advance(self, uid: str, skipped: bool = False, failed: bool = False,
                reused: bool = False) -> None:
        self.count += 1
        if uid in self._running:
            self._running.remove(uid)
        if self.mode == "plain":
            what = ("skipped" if skipped else "FAILED" if failed else
                    "reused (same computation as another unit)" if reused else "done")
            print(f"[{self.count}/{self.total}] {what} {uid}", flush=True)
        if self._bar is not None:
            self._bar.update(self._task, advance=1)
        self._update()

    def _update(self) -> None:
        if self._bar is not None:
            shown = ", ".join(self._running[:3]) + (" ..." if len(self._running) > 3 else "")
            self._bar.update(self._task, info=shown)

