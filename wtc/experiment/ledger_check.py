"""What a readable ledger line is: the fields the driver and the report use, with their types.

A line that fails is skipped by `Ledger.lines` with a warning naming its line number (the unit it
recorded then reruns), so a damaged ledger (binary garbage, a hand edit, a torn write) never
stops a resume or a report. A unit line must also still hash to its own `output_hash`, which
catches any edit of its outputs; its artifact paths must be `artifacts/<name>` (no `..`, not
absolute), since `--reuse` copies them.
"""

from __future__ import annotations

import math
from typing import Any

from wtc.paths import is_safe_name
from wtc.text import text_problem

ARTIFACTS = "artifacts"


def line_problem(row: Any) -> str | None:
    """Why `row` (a parsed JSON line) cannot be used, or None when it can."""
    if not isinstance(row, dict):
        return "not a JSON object"
    kind = row.get("type")
    if kind == "unit":
        return _unit_problem(row)
    if kind == "run":
        return _run_problem(row)
    if not isinstance(kind, str):
        return "no 'type'"
    return None  # a line of a kind this version does not read


def is_escape(problem: str) -> bool:
    """A problem that is an artifact path leaving the ledger's folder (refused by --reuse)."""
    return problem.startswith("artifact path")


def _unit_problem(row: dict[str, Any]) -> str | None:
    for key in ("unit", "kind", "input_hash", "output_hash"):
        if not isinstance(row.get(key), str) or not row[key] or text_problem(row[key], 1000):
            return f"no '{key}' string of printable text"
    for key, typ in (("outputs", dict), ("labels", dict), ("deps", list)):
        if not isinstance(row.get(key), typ):
            return f"no '{key}' {typ.__name__}"
    if not all(isinstance(d, str) for d in row["deps"]):
        return "'deps' holds a non-string"
    if not _count(row.get("train_macs")) or not _number(row.get("seconds")):
        return "'train_macs' or 'seconds' is not a non-negative number"
    art = row.get("artifacts", {})
    if not isinstance(art, dict):
        return "'artifacts' is not an object"
    for name, rel in art.items():
        if not (isinstance(rel, str) and rel.startswith(ARTIFACTS + "/")
                and is_safe_name(rel[len(ARTIFACTS) + 1:])):
            return f"artifact path {rel!r} of '{name}' is not {ARTIFACTS}/<name> inside the folder"
    problem = _outputs_problem(row["outputs"])
    if problem:
        return problem
    from wtc.experiment.plan import digest

    if digest(row["outputs"]) != row["output_hash"]:
        return "its outputs do not hash to its 'output_hash' (edited or damaged)"
    return None


def _outputs_problem(out: dict[str, Any]) -> str | None:
    if "top1" in out and not (_number(out["top1"]) and out["top1"] <= 1):
        return "'top1' is not a number in [0, 1]"
    if "macs" in out and not _number(out["macs"]):
        return "'macs' is not a non-negative number"
    if "details" in out and not isinstance(out["details"], dict):
        return "'details' is not an object"
    profile = out.get("profile", [])
    if not isinstance(profile, list) or not all(
            isinstance(p, list) and len(p) == 3 and isinstance(p[0], str) and _number(p[1])
            and p[1] > 0 and _number(p[2]) for p in profile):
        return "'profile' is not a list of [group, base width, width]"
    return None


def _run_problem(row: dict[str, Any]) -> str | None:
    units = row.get("units")
    if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
        return "no 'units' list of strings"
    recorded = row.get("recorded", {})
    if not isinstance(recorded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in recorded.items()):
        return "'recorded' is not an object of unit → input hash"
    if "rows" not in row:
        return None  # a run of explicit units (no plan): nothing else is read
    seeds, rows, methods = row.get("seeds"), row.get("rows"), row.get("methods", {})
    if not isinstance(seeds, list) or not all(_count(s) for s in seeds):
        return "'seeds' is not a list of non-negative integers"
    if not isinstance(methods, dict) or not all(is_safe_name(m) for m in methods):
        return "'methods' is not an object of method names"
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) and not text_problem(r[k], 1000)
                                        for k in ("id", "method", "source", "search", "widths"))
            for r in rows):
        return "'rows' is not a list of rows (id, method, source, search, widths)"
    if not isinstance(row.get("target", {}), dict | None):
        return "'target' is not an object"
    curve = row.get("curve", [])
    if not isinstance(curve, list) or not all(
            isinstance(p, dict) and is_safe_name(p.get("method")) and _count(p.get("epochs"))
            and all(isinstance(p.get(k), str) and not text_problem(p[k], 1000)
                    for k in ("source", "search", "widths")) for p in curve):
        return "'curve' is not a list of points (method, source, epochs, search, widths)"
    return None


def _number(x: Any) -> bool:
    return (isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            and x >= 0)


def _count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0
