"""The screen's table (issue 18), rebuilt from the committed screen cells' reports and ledgers:
one line per cell and method with its gain over uniform and its search's held-out top-1 (†
where the report flags it as near chance), and the unit hours the cells' ledgers record
(lines copied from a sibling with `--reuse`, marked `imported`, count once, where they ran).

    python scripts/screen_table.py [RESULTS_DIR]   # default examples/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cells(results: Path) -> list[Path]:
    """The screen cells with a finished report, cheapest architecture name first."""
    return sorted(p.parent for p in results.glob("screen_*/report.json"))


def table(results: Path) -> tuple[list[str], float, int]:
    """The table's lines, the unit seconds recorded, and how many cells they cover."""
    found = cells(results)
    lines = ["| cell | method | top-1 % | Δ uniform | search held-out top-1 % |",
             "|---|---|---|---|---|"]
    seconds = 0.0
    for cell in found:
        report = _json(cell / "report.json")
        for row in report["rows"]:
            held = row.get("search_val_top1")
            shown = "–" if held is None else (f"{100 * held:.2f}"
                                              + (" †" if row.get("search_near_chance") else ""))
            lines.append(f"| {cell.name.removeprefix('screen_')} | {row['row']} | "
                         f"{100 * row['top1_mean']:.2f} | {100 * row['delta_uniform']:+.2f} | "
                         f"{shown} |")
        for n, text in enumerate((cell / "ledger.jsonl").read_text().splitlines(), 1):
            line = _json(cell / "ledger.jsonl", text, n)
            if line.get("type") == "unit" and not line.get("imported"):  # copied: counted
                # where it ran (a unit shared inside a plan records 0 s)
                seconds += float(line.get("seconds") or 0.0)
    return lines, seconds, len(found)


def _json(path: Path, text: str | None = None, line: int = 0) -> dict:
    try:
        got = json.loads(path.read_text() if text is None else text)
    except ValueError as e:
        raise ValueError(f"{path}{f' line {line}' if line else ''}: not JSON ({e})") from None
    if not isinstance(got, dict):
        raise ValueError(f"{path}{f' line {line}' if line else ''}: not a JSON object")
    return got


def main(argv: list[str]) -> int:
    results = Path(argv[1]) if len(argv) > 1 else Path("examples/results")
    if not results.is_dir():
        print(f"error: {results} is not a folder", file=sys.stderr)
        return 2
    try:
        lines, seconds, n = table(results)
    except (OSError, ValueError, KeyError, TypeError) as e:  # a damaged report or ledger
        print(f"error: a screen cell under {results} cannot be read: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    print(f"\n{n} cells; {seconds / 3600:.1f} unit hours recorded "
          "(one core each; copied lines not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
