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
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wtc.atomic import make_folders
from wtc.errors import ConfigError, PlanError, UserInputError, WriteError, WtcError
from wtc.experiment import time_limit as deadline
from wtc.experiment.backends import check_backend, make_backend
from wtc.experiment.display import Display
from wtc.experiment.execute import UNIT_KINDS
from wtc.experiment.ledger import Ledger
from wtc.experiment.plan import Plan
from wtc.experiment.plan_cost import priced
from wtc.experiment.status import LOCK_FILE, ledger_status, reusable
from wtc.experiment.units import Unit, check_dag, curve_points, expand, rows
from wtc.paths import contained


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
    stopped: bool = False  # stopped early (max_units, or time_limit left units unstarted)
    deferred: dict[str, float] = field(default_factory=dict)  # unit → estimate, not started
    warnings: list[str] = field(default_factory=list)  # damaged ledger lines skipped

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out_dir), "ran": self.ran, "skipped": self.skipped,
                "reused": self.reused, "imported": self.imported,
                "seconds": round(self.seconds, 3), "stopped": self.stopped,
                "deferred": self.deferred, "warnings": self.warnings}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_experiment(plan: Plan | None, out_dir: str | Path, *, units: Sequence[Unit] | None = None,
                   backend: str = "local", jobs: int = 1, threads: int | None = None,
                   device: str = "cpu", address: str | None = None, progress: str = "none",
                   max_units: int | None = None, reuse: Sequence[str | Path] = (),
                   time_limit: float | None = None,
                   on_unit: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """Run `plan` (or explicit `units`) into `out_dir`; returns what ran and what was skipped.

    jobs: units in flight; threads: torch threads per unit (default: cores ÷ jobs).
    max_units: stop after running that many units (what a kill between units leaves).
    time_limit: seconds this run may take; it ends between units (`deadline.Clock`), the
    units left in `RunSummary.deferred`.
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
    if time_limit is not None and not (time_limit > 0 and time_limit < float("inf")):
        raise ConfigError(f"time limit must be a positive number of seconds, got {time_limit}")
    if time_limit is not None and (plan is None or units is not None):
        raise ConfigError("a time limit needs a plan: its units' projected MACs price them")
    Display(progress, 0)  # a bad progress mode, before anything is written
    todo = list(units) if units is not None else expand(plan)  # type: ignore[arg-type]
    if plan is not None and units is None:
        check_data(plan)
    check_dag(todo)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        _check_work(out)
    imports, reuse_warnings = reusable(reuse, out)
    created = make_folders(out)
    threads = threads or max(1, cores() // jobs)
    ledger = Ledger(out)
    budget = time_limit and (time_limit, deadline.estimates(plan, todo, out, reuse))
    try:
        return _run(plan, todo, ledger, backend, jobs, threads, device, address, progress,
                    max_units, on_unit, imports, reuse_warnings, budget)
    except WriteError:
        if created is not None and not ledger.units():  # nothing to resume: no partial folder
            shutil.rmtree(created, ignore_errors=True)
        raise


def _run(plan: Plan | None, todo: list[Unit], ledger: Ledger, backend: str, jobs: int,
         threads: int, device: str, address: str | None, progress: str,
         max_units: int | None, on_unit: Callable[[dict[str, Any]], None] | None,
         imports: dict[tuple[str, str], tuple[dict[str, Any], Ledger]],
         reuse_warnings: list[str], budget: tuple[float, dict[str, float]] | None = None
         ) -> RunSummary:
    out = ledger.dir
    with _lock(out):
        damaged = ledger.warnings() + reuse_warnings  # before a write cuts off a torn tail
        recorded = ledger_status(todo, out).hashes  # what this run takes from the ledger
        ledger.start_run(**_run_info(plan, todo, backend, jobs, threads), recorded=recorded)
        gpus = 1.0 if device == "cuda" else 0.0
        be = make_backend(backend, jobs=jobs, threads=threads, address=address, gpus=gpus)
        summary = RunSummary(out_dir=out, warnings=damaged)
        t0 = time.perf_counter()
        clock = None if budget is None else deadline.Clock(t0 + budget[0], budget[1])
        with Display(progress, len(todo)) as display:
            try:
                rt = _Runtime(be, threads, device, max_units, display, on_unit, clock)
                _Driver(todo, ledger, summary, rt, imports).run()
            finally:
                be.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def _check_work(out: Path) -> None:
    """Units in flight checkpoint under OUT/work/ (left there by an interrupted run): a `work`
    that is a symlink out of OUT, or an entry of it that is, would have them write elsewhere."""
    work = out / "work"
    if not (work.exists() or work.is_symlink()):
        return
    what = f"--out {out}: the work folder of its interrupted units"
    contained(out, "work", what)
    if work.is_dir():
        for entry in work.iterdir():
            contained(out, f"work/{entry.name}", what)


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One driver per experiment folder (the ledger has one writer)."""
    import fcntl

    try:
        f = open(out / LOCK_FILE, "w")  # noqa: SIM115 - closed below
    except OSError as e:
        raise WriteError(out / LOCK_FILE, e) from None
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
    search's settings as they will run on each source (their data was parsed with the plan)."""
    from wtc.data import make_data_for
    from wtc.experiment.plan_check import check_sources

    check_sources(plan)
    try:
        make_data_for(plan.target.spec, plan.eval_data)
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


@dataclass
class _Runtime:
    """Where the units of one run go and how they are watched."""

    backend: Any  # a `Backend`
    threads: int
    device: str
    max_units: int | None
    display: Display
    on_unit: Callable[[dict[str, Any]], None] | None
    clock: deadline.Clock | None = None


class _Driver:
    """One pass of the driver over a run's units: release what is ready (skip what the ledger
    records, copy what another experiment did, share a twin's outputs, else submit), wait for
    a unit to end and record it, until nothing runs."""

    def __init__(self, todo: list[Unit], ledger: Ledger, summary: RunSummary, rt: _Runtime,
                 imports: dict[tuple[str, str], tuple[dict[str, Any], Ledger]]) -> None:
        self.ledger, self.summary, self.rt, self.imports = ledger, summary, rt, imports
        self.done = ledger.done()
        self.state = _State(ledger)
        self.pending = list(todo)
        self.users: dict[str, list[Unit]] = {}  # unit id → the units that consume its outputs
        for u in todo:
            for d in u.deps:
                self.users.setdefault(d, []).append(u)
        self.running: dict[Future[dict[str, Any]], tuple[Unit, str, str]] = {}  # unit, ih, key
        self.failure: tuple[Unit, dict[str, Any]] | None = None
        self.stop = False

    def run(self) -> None:
        while True:
            while self._release():  # skipping one unit may make others ready
                pass
            if not self.running:
                break
            ready, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
            for fut in ready:
                self._collect(fut)
        self.summary.stopped = self.summary.stopped or bool(self.summary.deferred)
        if self.failure is not None:
            _raise(self.failure, self.ledger.dir)

    def _release(self) -> bool:
        """One sweep over the ready units in priority order; whether any was released."""
        changed = False
        for u in sorted(self.pending, key=_priority):
            if all(d in self.state.finished for d in u.deps) and self._settle(u):
                self.pending.remove(u)
                changed = True
        return changed

    def _settle(self, u: Unit) -> bool:
        """Finish a ready unit without running it, or submit it; False when it must wait (a
        twin is running and will be shared when it ends, or no slot is free)."""
        state, ledger, summary, display = self.state, self.ledger, self.summary, self.rt.display
        ih, key = state.hashes(u)
        row = self.done.get((u.id, ih))
        twin = state.by_content.get(key)
        if u.id in summary.deferred and (row or (u.id, ih) in self.imports or twin):
            del summary.deferred[u.id]  # refused a start, then finished without one
        if row is not None and (ledger.artifacts_present(row) or _consumed(
                u, row, self.users.get(u.id, []), self.done, state.finished)):
            state.finish(u, row, key)
            summary.skipped.append(u.id)
            display.advance(u.id, skipped=True)
        elif (u.id, ih) in self.imports:  # done by another experiment: copy it here
            state.finish(u, ledger.import_line(*self.imports[(u.id, ih)]), key)
            summary.imported.append(u.id)
            display.advance(u.id, skipped=True)
        elif twin is not None:  # same computation as a finished unit: share it
            state.finish(u, ledger.reuse(u, ih, twin), key)
            summary.reused[u.id] = twin["unit"]
            display.advance(u.id, reused=True)
        elif (key in state.in_flight or self.stop or self.failure is not None
              or len(self.running) >= self.rt.backend.slots or self._late(u)):
            return False
        else:
            display.started(u.id)
            be = self.rt.backend
            payload = _payload(u, state.finished, ledger, self.rt.threads, self.rt.device,
                               be.shared_fs)
            self.running[be.submit(payload)] = (u, ih, key)
            state.in_flight.add(key)
        return True

    def _late(self, u: Unit) -> bool:
        """Whether the time limit keeps `u` from starting (refused once, refused for good)."""
        if u.id in self.summary.deferred:
            return True
        refused = None if self.rt.clock is None else self.rt.clock.refuses(u.id)
        if refused is None:
            return False
        self.summary.deferred[u.id] = round(refused, 1)
        return True

    def _collect(self, fut: Future[dict[str, Any]]) -> None:
        """Record a unit that ended (or remember the first failure)."""
        u, ih, key = self.running.pop(fut)
        self.state.in_flight.discard(key)
        result = fut.result()
        if "error" in result:
            self.failure = self.failure or (u, result["error"])
            self.rt.display.advance(u.id, failed=True)
            return
        line = self.ledger.record(u, ih, result)
        if UNIT_KINDS.get(u.kind).keeps_work:  # recorded: its checkpoints are not needed
            shutil.rmtree(self.ledger.dir / "work" / ih, ignore_errors=True)
            with contextlib.suppress(OSError):  # the last one leaves no empty work/ behind
                (self.ledger.dir / "work").rmdir()
        self.state.finish(u, line, key)
        self.summary.ran.append(u.id)
        self.summary.unit_seconds[u.id] = line["seconds"]
        self.rt.display.advance(u.id)
        if self.rt.on_unit is not None:
            self.rt.on_unit(line)
        if self.rt.max_units is not None and len(self.summary.ran) >= self.rt.max_units:
            self.stop = True
            self.summary.stopped = True


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


def _priority(u: Unit) -> tuple[int, int]:
    """Among ready units: by kind (`UnitKind.priority`: rows finish before new searches
    start), then the target before the proxies (the direct rows, which every proxy row is
    compared with, complete first)."""
    return UNIT_KINDS.get(u.kind).priority, 0 if u.id.endswith("/target") else 1


def _payload(u: Unit, finished: dict[str, dict[str, Any]], ledger: Ledger, threads: int,
             device: str, shared_fs: bool) -> dict[str, Any]:
    inputs = {d: finished[d]["outputs"] for d in u.deps}
    artifacts = {d: ledger.read_artifacts(finished[d]) for d in u.deps
                 if finished[d].get("artifacts")}
    work = None
    if shared_fs and UNIT_KINDS.get(u.kind).keeps_work:  # so a killed training continues
        ih = u.input_hash({d: finished[d]["output_hash"] for d in u.deps})
        work = str((ledger.dir / "work" / ih).resolve())
    return {"id": u.id, "kind": u.kind, "params": u.params, "inputs": inputs,
            "artifacts": artifacts, "threads": threads, "device": device, "work_dir": work}


def _raise(failure: tuple[Unit, dict[str, Any]], out: Path) -> None:
    u, err = failure
    if err.get("user"):
        raise UserInputError(f"unit '{u.id}' failed: {err['message']}")
    log = out / "failed.log"
    from wtc.atomic import atomic_write_text

    atomic_write_text(log, f"unit {u.id}\n{err.get('traceback', '')}")
    raise UnitFailed(f"unit '{u.id}' failed with {err['type']}: {err['message']} (traceback "
                     f"in {log}; finished units are in the ledger, rerun to resume)")
