"""The graph layer: compiled stage graph, width groups and analytic cost. No torch here."""

from wtc.graph.compile import SpecLike, StageGraph, StageInfo, as_graph, compile_spec
from wtc.graph.cost import (
    channels,
    check_memory,
    cost_table,
    count_macs,
    count_params,
    estimate_memory,
    node_costs,
    training_macs,
)
from wtc.graph.groups import Group

__all__ = [
    "Group", "SpecLike", "StageGraph", "StageInfo", "as_graph", "channels", "check_memory",
    "compile_spec", "cost_table", "count_macs", "count_params", "estimate_memory", "node_costs",
    "training_macs",
]
