"""`wtc plot`: a picture of widths as ratios to the base, written atomically."""

from __future__ import annotations

import pytest

import wtc
from wtc.plot import ratio_rows

pytestmark = pytest.mark.unit


def test_ratio_rows_and_plot(tmp_path, cli):
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    half = wtc.uniform_widths(graph, multiplier=0.5)
    rows = ratio_rows(graph, [wtc.base_widths(graph), half])
    assert {r["group"] for r in rows} == set(graph.free_groups)
    assert all(r["ratios"] == [1.0, 0.5] for r in rows)
    wtc.save_widths(half, tmp_path / "half.json")
    code, out, _ = cli("plot", "specs/resnet20.yaml", tmp_path / "half.json", "-o",
                       tmp_path / "w.png")
    assert code == 0, out
    assert (tmp_path / "w.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_refuses_widths_of_another_spec_and_writes_nothing(tmp_path, cli):
    graph = wtc.compile_spec(wtc.load_spec("specs/resnet20.yaml"))
    wtc.save_widths(wtc.base_widths(graph), tmp_path / "w.json")
    code, _, err = cli("plot", "specs/resnet56.yaml", tmp_path / "w.json", "-o",
                       tmp_path / "w.png")
    assert code == 2 and "missing group" in err and "Traceback" not in err
    assert not (tmp_path / "w.png").exists()
    code, _, err = cli("plot", "specs/resnet20.yaml", tmp_path / "w.json", "-o",
                       tmp_path / "w.txt")
    assert code == 2 and ".png, .pdf or .svg" in err
