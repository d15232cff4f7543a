"""Where units run. A backend takes a unit's payload and returns a `concurrent.futures.Future`
of its result; the driver waits on those futures and alone writes the ledger.

- `local`: a pool of `jobs` spawned worker processes (`jobs=1`: in the driver's own process);
- `ray`: one Ray task per unit, with its CPUs (and GPUs) declared (optional extra `wtc[ray]`).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Protocol

BACKENDS = ("local", "ray")


class Backend(Protocol):
    name: str
    slots: int  # units in flight at once
    shared_fs: bool  # workers see the driver's files (work folders for resumable training)

    def submit(self, payload: dict[str, Any]) -> Future[dict[str, Any]]: ...

    def close(self) -> None: ...


def check_backend(name: str, address: str | None = None) -> None:
    """Refuse an unknown backend, a misplaced --address or a missing Ray before anything is
    written (the driver calls this before it creates the experiment folder)."""
    import importlib.util

    from wtc.errors import ConfigError

    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}")
    if name == "local" and address:
        raise ConfigError("--address is for the ray backend (use --backend ray)")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("the ray backend needs Ray: pip install 'wtc[ray]'")


def make_backend(name: str, *, jobs: int, threads: int, address: str | None = None,
                 gpus: float = 0.0) -> Backend:
    check_backend(name, address)
    if name == "local":
        from wtc.experiment.backends.local import LocalBackend

        return LocalBackend(jobs=jobs, threads=threads)
    from wtc.experiment.backends.ray import RayBackend

    return RayBackend(jobs=jobs, threads=threads, address=address, gpus=gpus)
