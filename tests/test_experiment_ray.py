"""The Ray backend runs the tiny plan on a local Ray instance with 2 CPUs and records the same
results as the local backend (issue 11). About 10 s, most of it Ray's start-up."""

from __future__ import annotations

import pytest
from test_experiment import results, write_plan

from wtc.experiment import load_plan, run_experiment

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'wtc[ray]')")


def test_ray_backend_gives_the_local_backends_ledger_results(tmp_path):
    plan = load_plan(write_plan(tmp_path / "plan.yaml"))
    local = run_experiment(plan, tmp_path / "local", threads=1)
    on_ray = run_experiment(plan, tmp_path / "ray", backend="ray", jobs=2, threads=1)
    assert not ray.is_initialized()  # the backend shut down the instance it started
    assert sorted(on_ray.ran) == sorted(local.ran)
    assert results(tmp_path / "ray") == results(tmp_path / "local")
    # the driver alone wrote the ledger and the artifacts, resumable with the local backend
    again = run_experiment(plan, tmp_path / "ray", threads=1)
    assert again.ran == [] and len(again.skipped) == len(local.ran) + len(local.reused)

