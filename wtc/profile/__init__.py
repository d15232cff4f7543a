"""Measured latency: per-layer latency tables for a runtime (`wtc profile`), and end-to-end
timing of built networks (the benchmark that checks the tables' predictions). Torch here; the
table format and its cost model live in `wtc.graph.latency` (no torch)."""

from wtc.profile.measure import Timing, time_call, time_layer, time_network
from wtc.profile.runtimes import RUNTIMES, get_runtime
from wtc.profile.table import plan_layers, profile_spec

__all__ = ["RUNTIMES", "Timing", "get_runtime", "plan_layers", "profile_spec", "time_call",
           "time_layer", "time_network"]
