"""Shared fixtures: one thread per xdist worker (2 on 2 cores), seeded RNGs, the in-process CLI.
Shared values and helpers are in tests/helpers.py."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


@pytest.fixture
def cli():
    """Invoke the wtc CLI in-process: returns (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from wtc.cli.main import app

    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, [str(a) for a in args])
        return result.exit_code, result.stdout, result.stderr

    return run
