"""The ledger: `DIR/ledger.jsonl`, one JSON line per finished unit (and one per run started).

Only the driver writes it: each line is appended whole, flushed and fsynced, so a run killed at
any moment leaves every finished unit on record and at worst a torn last line, which readers
skip. Unit lines hold the unit id, its input hash, its outputs and their hash, training MACs and
wall seconds. Artifacts a unit returns (trained weights) go next to it under `DIR/artifacts/`,
written atomically before the unit's line, named by their content hash.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wtc.atomic import atomic_write
from wtc.errors import ConfigError, WriteError
from wtc.experiment.ledger_check import ARTIFACTS, line_problem
from wtc.paths import contained

LEDGER = "ledger.jsonl"
__all__ = ["ARTIFACTS", "LEDGER", "Ledger"]


class Ledger:
    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.path = self.dir / LEDGER
        self.damaged: list[tuple[int, str]] = []  # (line number, why) of the last read

    # ------------------------------------------------------------------ reading

    def lines(self) -> Iterator[dict[str, Any]]:
        """Every usable line, in order. A damaged one (a torn write, bytes that are not UTF-8
        JSON, a line missing keys or with a wrong type, edited outputs) is skipped and listed
        in `self.damaged` as (line number, why), so the unit it recorded reruns."""
        self.damaged = []
        if not self.path.is_file():
            return
        try:
            with open(self.path, "rb") as f:
                parts = f.read().split(b"\n")
        except OSError as e:
            raise ConfigError(f"cannot read {self.path}: {e.strerror or e}") from None
        for number, raw in enumerate(parts, 1):
            if not raw.strip():
                continue
            if number == len(parts):  # no newline after it
                self.damaged.append((number, "torn last line (a write that was killed)"))
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                self.damaged.append((number, "not a line of JSON"))
                continue
            problem = line_problem(row)
            if problem is not None:
                self.damaged.append((number, _named(row, problem)))
                continue
            yield row

    def warnings(self) -> list[str]:
        """One message per damaged line, naming the file and the line number."""
        list(self.lines())
        return [f"{self.path}:{n}: skipped a damaged ledger line: {why}"
                for n, why in self.damaged]

    def units(self) -> list[dict[str, Any]]:
        return [r for r in self.lines() if r.get("type") == "unit"]

    def runs(self) -> list[dict[str, Any]]:
        return [r for r in self.lines() if r.get("type") == "run"]

    def done(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(unit id, input hash) → its latest line."""
        return {(r["unit"], r["input_hash"]): r for r in self.units()}

    def current(self) -> dict[str, dict[str, Any]]:
        """The line of every unit of the latest run (the ledger alone says which): one written
        since that run started, else the one it found recorded (its run line names their input
        hashes), so a plan changed half way does not show a superseded unit's line before its
        new one exists. Run lines of older versions name none: the latest line per unit."""
        runs: list[dict[str, Any]] = []
        latest: dict[str, dict[str, Any]] = {}
        since: dict[str, dict[str, Any]] = {}  # unit lines after the latest run line
        done: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.lines():
            if r.get("type") == "run":
                runs.append(r)
                since = {}
            elif r.get("type") == "unit":
                latest[r["unit"]] = since[r["unit"]] = done[(r["unit"], r["input_hash"])] = r
        if not runs:
            return latest
        run = runs[-1]
        recorded = run.get("recorded")
        if recorded is None:
            return {u: latest[u] for u in run["units"] if u in latest}
        out = {}
        for u in run["units"]:
            row = since.get(u) or (done.get((u, recorded[u])) if u in recorded else None)
            if row is not None:
                out[u] = row
        return out

    # ------------------------------------------------------------------ writing

    def append(self, row: dict[str, Any]) -> None:
        """Append one whole line (flushed and fsynced); WriteError naming the ledger when the
        disk refuses (no space, no permission), with the ledger cut back to whole lines."""
        line = json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._repair_tail()
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            with contextlib.suppress(OSError):
                self._repair_tail()  # a part of the line may have reached the disk
            raise WriteError(self.path, e) from None

    def _repair_tail(self) -> None:
        """A killed write may have left half a line: cut it off (its unit was not recorded and
        reruns), so the ledger holds only whole lines, as an uninterrupted run leaves it."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def start_run(self, **info: Any) -> None:
        self.append({"type": "run", "time": now(), **info})

    def record(self, unit: Any, input_hash: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store the unit's artifacts, then append its line; returns the line."""
        stored = {}
        for name, blob in (result.get("artifacts") or {}).items():
            stored[name] = self.store_artifact(blob, name)
        outputs = result["outputs"]
        row = _unit_line(unit, input_hash, output_hash=output_hash(outputs), outputs=outputs,
                         artifacts=stored, train_macs=int(result.get("train_macs") or 0),
                         seconds=round(float(result.get("seconds") or 0.0), 3),
                         timing=result.get("timing") or {},
                         **({"runtime": result["runtime"]} if result.get("runtime") else {}))
        self.append(row)
        return row

    def reuse(self, unit: Any, input_hash: str, source: dict[str, Any]) -> dict[str, Any]:
        """Record `unit` as computed by `source` (a line of a unit with the same content key):
        same outputs and artifacts, no training MACs or seconds of its own."""
        row = _unit_line(unit, input_hash, output_hash=source["output_hash"],
                         outputs=source["outputs"], artifacts=dict(source.get("artifacts") or {}),
                         train_macs=0, seconds=0.0, timing={}, reused=source["unit"])
        self.append(row)
        return row

    def import_line(self, row: dict[str, Any], source: Ledger) -> dict[str, Any]:
        """Record another experiment's line for the same unit and inputs here (copying its
        artifacts), so this ledger stays complete on its own; returns the new line."""
        for rel in (row.get("artifacts") or {}).values():
            if not self.artifact(rel).is_file():
                self._write_artifact(rel, source.artifact(rel).read_bytes())
        line = {**row, "imported": str(source.dir)}
        self.append(line)
        return line

    # ------------------------------------------------------------------ artifacts

    def store_artifact(self, blob: bytes, name: str) -> str:
        """Write `blob` under artifacts/ named by its hash; returns the relative path."""
        h = hashlib.sha256(blob).hexdigest()[:16]
        rel = f"{ARTIFACTS}/{h}-{name}"
        if not self.artifact(rel).is_file():
            self._write_artifact(rel, blob)
        return rel

    def artifact(self, rel: str) -> Path:
        """The file of an artifact path read from a line; PathError when it leaves the folder
        (through '..', an absolute path or a symlink)."""
        return contained(self.dir, rel, f"{self.path}: artifact")

    def _write_artifact(self, rel: str, blob: bytes) -> None:
        path = self.artifact(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(blob))

    def artifacts_present(self, row: dict[str, Any]) -> bool:
        return all(self.artifact(rel).is_file() for rel in (row.get("artifacts") or {}).values())

    def read_artifacts(self, row: dict[str, Any]) -> dict[str, bytes]:
        return {name: self.artifact(rel).read_bytes()
                for name, rel in (row.get("artifacts") or {}).items()}


def _named(row: Any, problem: str) -> str:
    unit = row.get("unit") if isinstance(row, dict) else None
    return f"{problem} (unit {unit!r}, which reruns)" if isinstance(unit, str) else problem


def _unit_line(unit: Any, input_hash: str, **fields: Any) -> dict[str, Any]:
    return {"type": "unit", "unit": unit.id, "kind": unit.kind, "labels": unit.labels,
            "deps": list(unit.deps), "input_hash": input_hash, **fields, "time": now()}


def output_hash(outputs: dict[str, Any]) -> str:
    """Hash of a unit's outputs; a unit that returns artifacts puts their content hash (e.g.
    of the weights' tensors, not of the file, whose bytes vary) in its outputs."""
    from wtc.experiment.plan import digest

    return digest(outputs)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
