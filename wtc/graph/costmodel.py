"""Pluggable cost models: what a width budget is counted in (MACs, parameters, latency).

A cost model maps (graph, widths) to one number and gives the optimizers what they need:

    cost(graph, widths)   the budget's number (uniform bisection, AutoSlim's greedy stop,
                          DMCP's and transfer's re-match, every reported "achieved")
    terms(graph)          its linearisation over the conv/linear nodes in MACs form (MorphNet's
                          per-group cost weights, DMCP's expected cost through the chains):
                          each node's MACs coefficient times the node's cost per MAC at the
                          base widths, normalised so the terms sum to the base MACs; for MACs
                          this is exactly `mac_terms`
    check(graph)          refuse a model that cannot price this graph (a table for other layers)

`macs` is the default and the exact analytic one; `params` counts trainable parameters;
`latency:TABLE` reads a per-layer latency table made by `wtc profile` (`wtc.graph.latency`).
A cost is named by a string (`--cost macs|params|latency:TABLE`), read once by `parse_cost`
(`wtc.graph.cost_registry`, the registry of models);
a target in its unit by `parse_target` (`0.5x`, `41M`, `3ms`, `250us`). No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from wtc.errors import TargetError
from wtc.graph.compile import StageGraph
from wtc.graph.cost import MacTerm, count_macs, count_params, mac_terms, node_costs

__all__ = ["CostModel", "MacsCost", "ParamsCost", "default_cost", "is_default",
           "parse_target"]

Groups = Mapping[str, int] | Any | None


class CostModel:
    """Base of every cost model: `name`, `unit`, `cost`, `terms`, `check`, `describe`."""

    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    integral: ClassVar[bool] = True  # costs (and targets) are whole numbers

    def cost(self, graph: StageGraph, widths: Groups = None) -> float:  # pragma: no cover
        raise NotImplementedError

    def node_costs(self, graph: StageGraph, widths: Groups = None
                   ) -> dict[str, float]:  # pragma: no cover
        """Cost of every node that has one (the per-stage view, the linearisation)."""
        raise NotImplementedError

    def check(self, graph: StageGraph) -> None:
        """Raise a UserInputError when this model cannot price `graph`."""

    def warnings(self) -> list[str]:
        """What the CLI should say about using this model here (e.g. another machine)."""
        return []

    def describe(self) -> dict[str, Any]:
        """What widths.json records about the model (provenance)."""
        return {"name": self.name, "unit": self.unit}

    def label(self) -> str:
        """The `--cost` string that names this model."""
        return self.name

    def format(self, value: float) -> str:
        return f"{value:,.0f} {self.unit}" if self.integral else f"{value:.4g} {self.unit}"

    def terms(self, graph: StageGraph) -> list[MacTerm]:
        """The conv/linear nodes in MACs form, each weighted by its cost per MAC at the base
        widths, normalised to sum to the base MACs (see the module docstring)."""
        def make() -> list[MacTerm]:
            base = mac_terms(graph)
            per_node = self.node_costs(graph)
            macs = {n: m for n, (m, _) in node_costs(graph).items()}
            weights = {t.node: per_node.get(t.node, 0.0) / macs[t.node] if macs.get(t.node)
                       else 0.0 for t in base}
            scaled = sum(weights[t.node] * macs.get(t.node, 0) for t in base)
            norm = count_macs(graph) / scaled if scaled > 0 else 0.0
            return [replace(t, coef=t.coef * weights[t.node] * norm) for t in base]

        return graph.derived(f"terms:{self.label()}", make)

    def linear_cost(self, graph: StageGraph, widths: Groups = None) -> float:
        """The linearisation at `widths`, in MACs-equivalents (DMCP's loss target)."""
        from wtc.graph.cost import channels

        c = channels(graph, widths)
        total = 0.0
        for t in self.terms(graph):
            out = sum(c[g] for g in t.outs)
            total += t.coef * (out if t.grouped else sum(c[g] for g in t.ins) * out)
        return total


class MacsCost(CostModel):
    """Multiply-accumulates (`wtc.graph.cost`): the default, exact and analytic."""

    name = "macs"
    unit = "MACs"

    def cost(self, graph: StageGraph, widths: Groups = None) -> float:
        return count_macs(graph, widths)

    def node_costs(self, graph: StageGraph, widths: Groups = None) -> dict[str, float]:
        return {n: m for n, (m, _) in node_costs(graph, widths).items() if m}

    def terms(self, graph: StageGraph) -> list[MacTerm]:
        return mac_terms(graph)

    def describe(self) -> dict[str, Any]:
        return {"name": "macs", "unit": "MACs"}


class ParamsCost(CostModel):
    """Trainable parameters: a budget for storage rather than compute."""

    name = "params"
    unit = "params"

    def cost(self, graph: StageGraph, widths: Groups = None) -> float:
        return count_params(graph, widths)

    def node_costs(self, graph: StageGraph, widths: Groups = None) -> dict[str, float]:
        return {n: p for n, (_, p) in node_costs(graph, widths).items() if p}


def default_cost() -> CostModel:
    return MacsCost()


def is_default(cost: CostModel | None) -> bool:
    """True for None and MACs: the paths where nothing about a run may change."""
    return cost is None or isinstance(cost, MacsCost)


_MAC_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}
_TIME_SUFFIX = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_target(graph: StageGraph, target: Any, cost: CostModel | None = None) -> float:
    """A target in the cost model's unit: None is the base network's cost, "0.5x" a multiple of
    it; MACs and params take numbers ("41M", "4.1e7"), latency a time ("3ms", "250us", "0.003s").
    MACs and params targets are whole numbers (as `resolve_target` always gave)."""
    cost = cost or MacsCost()
    base = cost.cost(graph)
    if target is None:
        return base
    if isinstance(target, bool):
        raise TargetError(f"{_what(cost)} target must be a number or a multiple such as 0.5x, "
                          f"not {target!r}")
    if isinstance(target, int | float):
        value = float(target)
    else:
        value = _read(str(target), cost, base)
    if not value > 0 or math.isinf(value) or math.isnan(value):
        raise TargetError(f"{_what(cost)} target must be a positive number, got {target!r}")
    return round(value) if cost.integral else value


def _what(cost: CostModel) -> str:
    return {"macs": "MACs", "params": "parameter", "latency": "latency"}.get(cost.name,
                                                                          cost.name)


def time_unit(text: str) -> str | None:
    """The time unit a target is written in ("3ms" → "ms"), None when it is not a time."""
    v = text.strip().lower()
    return next((u for u in sorted(_TIME_SUFFIX, key=len, reverse=True)
                 if v.endswith(u) and _is_number(v[:-len(u)])), None)


def _read(text: str, cost: CostModel, base: float) -> float:
    v = text.strip().lower()
    unit = time_unit(v)
    try:
        if v.endswith("x"):
            return float(v[:-1]) * base
        if cost.integral:
            if unit is not None:
                raise TargetError(f"'{text}' is a latency; a latency target needs "
                                  "--cost latency:TABLE (a table made by `wtc profile`)")
            if v[-1:] in _MAC_SUFFIX:
                return float(v[:-1]) * _MAC_SUFFIX[v[-1]]
            return float(v)
        if unit is None:
            raise TargetError(f"cannot read latency target '{text}': give a time such as 3ms, "
                              "250us or 0.003s, or a multiple of the base network's latency "
                              "such as 0.5x")
        return float(v[:-len(unit)]) * _TIME_SUFFIX[unit]
    except ValueError:
        if cost.name == "macs":
            raise TargetError(f"cannot read MACs target '{text}': give a multiple of the base "
                              "such as 0.5x, or a number such as 4.1e7 or 41M") from None
        raise TargetError(f"cannot read {_what(cost)} target '{text}': give a multiple of the "
                          "base such as 0.5x, or a number such as 2.7e5 or 270k") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return bool(text.strip())
