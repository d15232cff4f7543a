"""The checks of a resolved plan that need more than its own fields: every search's settings
and data as they will run on each source (a proxy's `search_epochs` multiplies the epochs, its
`batch_scale` the batch and the learning rate, and either can leave the bounds a unit would
then refuse after the run had started)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from wtc.errors import PlanError, UserInputError


def check_sources(plan: Any) -> None:
    """PlanError naming the source when a search on it would be refused when it runs."""
    from wtc.data import DataConfig
    from wtc.optimizers import validate_settings

    for src in (plan.target, *plan.proxies.values()):
        key = "target" if src.is_target else f"proxies.{src.name}"
        try:
            DataConfig(**src.data)
        except ValidationError as e:
            er = e.errors()[0]
            raise PlanError(f"its searches' data {'.'.join(map(str, er['loc']))}: {er['msg']}",
                            key=key, file=plan.file) from None
        for method, settings in plan.methods.items():
            try:
                validate_settings(method, src.settings(settings))
            except UserInputError as e:
                raise PlanError(f"searches on it: {e}", key=key, file=plan.file) from None
