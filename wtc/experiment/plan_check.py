"""The checks of a resolved plan that need more than its own fields: every search's settings as
they will run on each source (a proxy's `search_epochs` multiplies the epochs, its `batch_scale`
the learning rate, and either can leave the bounds a unit would then refuse after the run had
started). Each source's data, batch included, is parsed when the plan is (`plan._source_data`)."""

from __future__ import annotations

from typing import Any

from wtc.errors import PlanError, UserInputError


def check_sources(plan: Any) -> None:
    """PlanError naming the source when a search on it would be refused when it runs."""
    from wtc.optimizers import OPTIMIZERS, validate_settings

    for method in plan.methods:
        if plan.cost is None and OPTIMIZERS.get(method).needs_cost_model:
            raise PlanError(f"method '{method}' trades MACs against another cost and has "
                            "nothing to do under a MACs budget: give the target a `cost:` "
                            "(latency:TABLE or params), or drop the method",
                            key=f"methods.{method}", file=plan.file)
    for src in (plan.target, *plan.proxies.values()):
        key = "target" if src.is_target else f"proxies.{src.name}"
        for method, settings in plan.methods.items():
            try:
                validate_settings(method, src.settings(settings))
            except UserInputError as e:
                raise PlanError(f"searches on it: {e}", key=key, file=plan.file) from None
    check_searches(plan)


def check_searches(plan: Any) -> None:
    """Each method's own checks of every search on each source (AutoSlim: the supernet's
    smallest widths reach the target), before any unit runs, not in the search unit after
    others ran: at the source's target, or for a shared search (`share_targets`) at every
    target it serves, the lowest of which the plan's own target may be well above. A cost
    model's target is checked by its unit (plans with one share nothing)."""
    from wtc.optimizers.request import SearchRequest, prepare

    for method, settings in plan.methods.items():
        shared = plan.shared.get(method, {})
        for src in plan.sources:
            if src.name in shared:
                targets, key = list(shared[src.name]), f"methods.{method}.share_targets"
                where = "the shared search" + ("" if src.is_target
                                               else f" on proxy '{src.name}'")
            elif plan.cost is None:
                targets, key = src.target_macs, f"methods.{method}"
                where = "the direct search" if src.is_target else f"the search on '{src.name}'"
            else:
                continue
            request = SearchRequest(method, targets, settings=src.settings(settings),
                                    data=src.data, seed=plan.model.search.seed)
            try:
                prepare(src.graph, request)
            except UserInputError as e:
                raise PlanError(f"{where}: {e}", key=key, file=plan.file) from None
