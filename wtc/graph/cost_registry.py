"""The registry of cost models and the one reader of a `--cost` string (`parse_cost`).

A new cost model is a `CostModel` subclass (`wtc.graph.costmodel`) added here under its name
with a factory that takes the text after "name:". No torch here.
"""

from __future__ import annotations

from typing import Any

from wtc.errors import ConfigError
from wtc.graph.costmodel import CostModel, MacsCost, ParamsCost
from wtc.graph.latency import LatencyCost
from wtc.registry import Registry

__all__ = ["COST_MODELS", "cost_forms", "parse_cost"]

# name → factory(argument after "name:") → model
COST_MODELS: Registry[Any] = Registry("cost model")
COST_MODELS.add("macs", lambda arg: MacsCost())
COST_MODELS.add("params", lambda arg: ParamsCost())
COST_MODELS.add("latency", LatencyCost.from_arg)

_NEEDS_ARG = {"latency": "latency:TABLE (a table made by `wtc profile`)"}


def parse_cost(value: str | CostModel | None) -> CostModel:
    """`macs`, `params` or `latency:TABLE[@RUNTIME]` → the model (None: MACs)."""
    if value is None:
        return MacsCost()
    if isinstance(value, CostModel):
        return value
    text = str(value).strip()
    name, sep, arg = text.partition(":")
    name = name.strip().lower()
    factory = COST_MODELS.get(name)
    if name in _NEEDS_ARG and not arg.strip():
        raise ConfigError(f"cost model '{name}' needs an argument: {_NEEDS_ARG[name]}")
    if name not in _NEEDS_ARG and sep:
        raise ConfigError(f"cost model '{name}' takes no argument (got '{text}')")
    return factory(arg.strip())




def cost_forms() -> list[str]:
    """How each cost model is written after `--cost` (`latency:TABLE`), for help text."""
    return [_NEEDS_ARG[n].split(" ", 1)[0] if n in _NEEDS_ARG else n for n in COST_MODELS]
