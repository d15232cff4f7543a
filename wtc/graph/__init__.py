"""The graph layer: compiled stage graph, width groups and analytic cost. No torch here."""

from wtc.graph.compile import StageGraph, StageInfo, compile_spec
from wtc.graph.cost import channels, cost_table, count_macs, count_params, node_costs
from wtc.graph.groups import Group

__all__ = [
    "Group", "StageGraph", "StageInfo", "channels", "compile_spec", "cost_table", "count_macs",
    "count_params", "node_costs",
]
