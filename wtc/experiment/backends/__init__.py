"""Where units run. A backend takes a unit's payload and returns a `concurrent.futures.Future`
of its result; the driver waits on those futures and alone writes the ledger.

- `local`: a pool of `jobs` spawned worker processes (`jobs=1`: in the driver's own process);
- `ray`: one Ray task per unit, with its CPUs (and GPUs) declared (optional extra `wtc[ray]`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from wtc.errors import ConfigError
from wtc.registry import Registry


class Backend(Protocol):
    name: str
    slots: int  # units in flight at once
    shared_fs: bool  # workers see the driver's files (work folders for resumable training)

    def submit(self, payload: dict[str, Any]) -> Future[dict[str, Any]]: ...

    def close(self) -> None: ...


def _local(*, jobs: int, threads: int, address: str | None, gpus: float) -> Backend:
    from wtc.experiment.backends.local import LocalBackend

    return LocalBackend(jobs=jobs, threads=threads)


def _ray(*, jobs: int, threads: int, address: str | None, gpus: float) -> Backend:
    from wtc.experiment.backends.ray import RayBackend

    return RayBackend(jobs=jobs, threads=threads, address=address, gpus=gpus)


# backend name → make(jobs=, threads=, address=, gpus=) (the backend module loads on first use)
BACKENDS: Registry[Callable[..., Backend]] = Registry("backend")
BACKENDS.add("local", _local)
BACKENDS.add("ray", _ray)


def check_backend(name: str, address: str | None = None) -> None:
    """Refuse an unknown backend, a misplaced --address or a missing Ray before anything is
    written (the driver calls this before it creates the experiment folder)."""
    import importlib.util

    BACKENDS.get(name)  # an unknown name lists the valid ones
    if name == "local" and address:
        raise ConfigError("--address is for the ray backend (use --backend ray)")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("the ray backend needs Ray: pip install 'wtc[ray]'")


def make_backend(name: str, *, jobs: int, threads: int, address: str | None = None,
                 gpus: float = 0.0) -> Backend:
    check_backend(name, address)
    return BACKENDS.get(name)(jobs=jobs, threads=threads, address=address, gpus=gpus)
