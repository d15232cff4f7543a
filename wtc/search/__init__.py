"""Width search: one interface, a registry of optimizers (uniform, morphnet, ...).

    import wtc
    result = wtc.search(graph, method="morphnet", target_macs="1.0x", data="fashion-mnist",
                        epochs=2, fraction=0.2, seed=0)
    result.widths            # Widths with provenance (method, settings, seed, data, MACs, cost)
    result.save("widths.json")

Adding a method is one class registered with `@register_optimizer` (see base.py).
"""

from wtc._callable import make_module_callable
from wtc.search import morphnet, uniform  # noqa: F401  (register the built-in methods)
from wtc.search.base import (
    OPTIMIZERS,
    NoSettings,
    Optimizer,
    Outcome,
    SearchContext,
    SearchResult,
    get_optimizer,
    prepare,
    register_optimizer,
    resolve_target,
    run_prepared,
    search,
    validate_settings,
)

__all__ = [
    "OPTIMIZERS", "NoSettings", "Optimizer", "Outcome", "SearchContext", "SearchResult",
    "get_optimizer", "prepare", "register_optimizer", "resolve_target", "run_prepared", "search",
    "validate_settings",
]


make_module_callable(__name__, "search")
