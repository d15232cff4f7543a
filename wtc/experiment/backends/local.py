"""The local backend: a pool of spawned worker processes, or the driver's own process.

Each worker gets `threads` torch threads (the cores split between the workers); spawn (not
fork) so a worker never inherits the driver's torch thread pool or locks.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from wtc.experiment.execute import run_unit


def _init_worker(threads: int) -> None:
    """Threads for the worker's process, and its one-off imports done here (torch, and the
    torch._dynamo that constructing a torch optimizer imports: 1-2 s), so a unit's recorded
    seconds are its own work, not the first unit of each worker paying the process's
    start-up."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch._dynamo  # noqa: F401

    import wtc.trainer  # noqa: F401


class LocalBackend:
    name = "local"
    shared_fs = True

    def __init__(self, jobs: int = 1, threads: int = 1) -> None:
        self.slots = max(1, int(jobs))
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None
        if self.slots > 1:
            self._pool = ProcessPoolExecutor(max_workers=self.slots,
                                             mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker, initargs=(threads,))

    def submit(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        if self._pool is not None:
            return self._pool.submit(run_unit, payload)
        fut: Future[dict[str, Any]] = Future()  # one job: run here, now
        fut.set_result(run_unit(payload))
        return fut

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
