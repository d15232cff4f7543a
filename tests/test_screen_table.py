"""scripts/screen_table.py: the screen's table from the committed cells, and its unit hours
counting a search copied between sibling cells once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # runs the script in a subprocess

SCRIPT = Path(__file__).parents[1] / "scripts" / "screen_table.py"


def _cell(root: Path, name: str, rows: list[dict], lines: list[dict]) -> None:
    cell = root / name
    cell.mkdir(parents=True)
    (cell / "report.json").write_text(json.dumps({"rows": rows}))
    (cell / "ledger.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_the_table_lists_every_cell_and_counts_copied_units_once(tmp_path):
    uniform = {"row": "uniform", "top1_mean": 0.9, "delta_uniform": 0.0, "search_val_top1": None}
    flagged = {"row": "dmcp/direct", "top1_mean": 0.88, "delta_uniform": -0.02,
               "search_val_top1": 0.12, "search_near_chance": True}
    search = {"type": "unit", "unit": "search/autoslim/target", "seconds": 3600.0}
    _cell(tmp_path, "screen_a_0.1x", [uniform, flagged], [{"type": "run"}, search])
    _cell(tmp_path, "screen_a_0.05x", [uniform], [{**search, "imported": "elsewhere"},
                                                 {"type": "unit", "seconds": 1800.0}])
    (tmp_path / "not_a_cell").mkdir()
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True,
                          text=True, check=True)
    rows = [x for x in done.stdout.splitlines() if x.startswith("| a_")]
    assert rows == ["| a_0.05x | uniform | 90.00 | +0.00 | – |",
                    "| a_0.1x | uniform | 90.00 | +0.00 | – |",
                    "| a_0.1x | dmcp/direct | 88.00 | -2.00 | 12.00 † |"]
    assert "2 cells; 1.5 unit hours recorded" in done.stdout


def test_a_missing_folder_is_one_clear_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "absent")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "is not a folder" in done.stderr and not done.stdout


def test_a_damaged_ledger_is_one_clear_error_naming_the_file_and_line(tmp_path):
    _cell(tmp_path, "screen_a_0.1x", [], [{"type": "run"}])
    with (tmp_path / "screen_a_0.1x" / "ledger.jsonl").open("a") as f:
        f.write("{not json\n")
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True,
                          text=True)
    assert done.returncode == 2 and not done.stdout and "Traceback" not in done.stderr
    assert "screen_a_0.1x/ledger.jsonl line 2: not JSON" in done.stderr
