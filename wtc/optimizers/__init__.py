"""Width optimizers: one interface, a registry of methods (uniform, morphnet, ...).

    import wtc
    result = wtc.search(graph, method="morphnet", target_macs="1.0x", data="fashion-mnist",
                        epochs=2, fraction=0.2, seed=0)
    result.widths            # Widths with provenance (method, settings, seed, data, MACs, cost)
    result.save("widths.json")

    base.py      the framework: Optimizer (its declared protocol), its registry, SearchContext
    request.py   SearchRequest, prepare, run_prepared, search() (no torch)
    uniform.py   the baseline: one multiplier, no training
    capacity.py  the most MACs a latency/params budget buys (widths/exchange.py); no training
    autoslim.py  AutoSlim: sandwich-trained supernet (sandwich.py), greedy slimming (greedy.py)
    dmcp.py      DMCP: Markov chains over channel blocks per group (dmcp_chain.py), trained
                 on the sandwich supernet with an expected-MACs loss (dmcp_train.py)
    morphnet.py  MorphNet: gamma L1 (gamma.py) through the trainer's hooks, then expand
    training.py  helpers for methods that train (data, configs, resumable fits); no method

Adding a method is one module with a class registered with `@register_optimizer`, imported
below. The public call is `wtc.search(...)` (this package is deliberately not named `search`).
Importing this package does not import torch; a method imports it when it trains.
"""

from wtc.optimizers import (  # noqa: F401  (register the built-in methods)
    autoslim,
    capacity,
    dmcp,
    morphnet,
    uniform,
)
from wtc.optimizers.base import (
    OPTIMIZERS,
    NoSettings,
    Optimizer,
    Outcome,
    SearchContext,
    SearchResult,
    get_optimizer,
    register_optimizer,
    resolve_target,
    validate_settings,
)
from wtc.optimizers.request import SearchRequest, prepare, run_prepared, search

__all__ = [
    "OPTIMIZERS", "NoSettings", "Optimizer", "Outcome", "SearchContext", "SearchRequest",
    "SearchResult", "get_optimizer", "prepare", "register_optimizer", "resolve_target",
    "run_prepared", "search", "validate_settings",
]
