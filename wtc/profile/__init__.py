"""Measured latency: per-layer latency tables for a runtime (`wtc profile`), and end-to-end
timing of built networks (the benchmark that checks the tables' predictions). Torch here; the
table format and its cost model live in `wtc.graph.latency` (no torch). The names are imported
on first use, so `wtc profile --help` lists the runtimes without importing torch."""

from __future__ import annotations

from wtc.lazy import lazy_exports

# public name -> the module that defines it
_LAZY = {
    "RUNTIMES": "wtc.profile.runtimes", "get_runtime": "wtc.profile.runtimes",
    "Timing": "wtc.profile.measure", "time_call": "wtc.profile.measure",
    "time_layer": "wtc.profile.measure", "time_network": "wtc.profile.measure",
    "plan_layers": "wtc.profile.table", "profile_spec": "wtc.profile.table",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
