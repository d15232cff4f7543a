"""The Ray backend: each unit a Ray task declaring its CPUs (threads) and GPUs.

`address` joins a running cluster (`ray start --head` elsewhere; "auto" finds a local one);
without it a local Ray instance with `jobs × threads` CPUs is started and shut down at the end.
Workers return results as plain data (outputs, artifact bytes), so no shared file system is
needed: the driver alone writes the ledger and the artifacts. The one use of the driver's files
is a resumable unit's work folder (checkpoints, `work/INPUT_HASH/`): on the local instance this
backend starts, workers run on this machine and get it, so a killed search or training
continues where it stopped; on a joined cluster they may not see it, so they restart whole.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from wtc.errors import ConfigError
from wtc.experiment.execute import run_unit


class RayBackend:
    name = "ray"

    def __init__(self, jobs: int = 1, threads: int = 1, address: str | None = None,
                 gpus: float = 0.0) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("the ray backend needs Ray: pip install 'wtc[ray]' (or "
                              "pip install ray)") from None
        self._ray = ray
        self._started = False
        self.shared_fs = False  # set below when this backend starts its own local instance
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    ray.init(num_cpus=max(1, jobs) * max(1, threads), **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as e:
                where = address or "a local instance"
                raise ConfigError(f"cannot start or join Ray at {where}: {e}") from None
            self._started = True
            self.shared_fs = not address
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = max(1, jobs if not address else cpus // max(1, threads))
        self._task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(run_unit)

    def submit(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        return self._task.remote(payload).future()

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False
