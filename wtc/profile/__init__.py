"""Measured latency: per-layer latency tables for a runtime (`wtc profile`), and end-to-end
timing of built networks (the benchmark that checks the tables' predictions). Torch here; the
table format and its cost model live in `wtc.graph.latency` (no torch). The names are imported
on first use, so `wtc profile --help` lists the runtimes without importing torch."""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_LAZY = {
    "RUNTIMES": "wtc.profile.runtimes", "get_runtime": "wtc.profile.runtimes",
    "Timing": "wtc.profile.measure", "time_call": "wtc.profile.measure",
    "time_layer": "wtc.profile.measure", "time_network": "wtc.profile.measure",
    "plan_layers": "wtc.profile.table", "profile_spec": "wtc.profile.table",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wtc.profile' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
