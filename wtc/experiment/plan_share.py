"""`share_targets`: one search of a multi-target method (AutoSlim) serving several MACs budgets.

    methods:
      autoslim: {epochs: 4, min_multiplier: 0.1, share_targets: [0.25x, 0.1x, 0.05x, 0.02x]}

With it, a source's search unit runs every listed target in one run (its parameters name the
list, not the plan's own target), and a `pick` unit selects the plan's target from its outputs.
Plans that differ only in `target.macs` (and list the same targets) then have the same search
unit, same id and same input hash, so `--reuse` of a sibling's folder copies it: the slimming
trajectory is computed once and picked from once per budget. One run at several targets gives
each target the widths a single-target run gives it (`tests/optimizers/test_autoslim_shared.py`).

Without the key nothing changes: the search units keep their parameters and hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wtc.errors import PlanError, UserInputError
from wtc.experiment.plan_cost import fits
from wtc.experiment.source import Source
from wtc.graph import count_macs

SHARE_KEY = "share_targets"
MAX_SHARED = 32  # budgets one search may serve (each is one pick)

# method → source name → the MACs targets its one search serves (largest first)
Shared = dict[str, dict[str, tuple[int, ...]]]


def without_share(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """A method's plan entry without `share_targets` (what its settings are validated from)."""
    return {k: v for k, v in (settings or {}).items() if k != SHARE_KEY}


def resolve_shared(methods: Mapping[str, Mapping[str, Any] | None], target: Source,
                   proxies: Mapping[str, Source], cost: Any, file: str | None) -> Shared:
    """Every method's `share_targets` resolved on each source: on the target as given (the
    plan's own target must be among them), on a proxy at the same shares of its base MACs (so
    a proxy's own target, at the plan's share, is among them too). PlanError at
    `methods.M.share_targets` for a method that serves one target per run, a cost model other
    than MACs, a target that does not resolve or fit, or a list without the plan's target."""
    from wtc.optimizers.base import multi_target_methods
    from wtc.optimizers.targets import resolve_targets

    out: Shared = {}
    for method, entry in methods.items():
        if not entry or SHARE_KEY not in entry:
            continue
        key, value = f"methods.{method}.{SHARE_KEY}", entry[SHARE_KEY]
        multi = multi_target_methods()
        if method not in multi:
            raise PlanError(f"method '{method}' serves one MACs target per run, so it has no "
                            f"targets to share (methods that serve several: "
                            f"{', '.join(multi) or 'none'})", key=key, file=file)
        if cost is not None:
            raise PlanError("shared targets are MACs budgets: not with a target.cost other "
                            "than macs", key=key, file=file)
        if not isinstance(value, list | str) or not value or len(value) > MAX_SHARED:
            raise PlanError(f"give a list of 1 to {MAX_SHARED} MACs targets (e.g. [0.25x, "
                            "0.1x])", key=key, file=file)
        try:
            targets = resolve_targets(target.graph, value)
            for t in targets:
                fits(target.graph, t)
        except UserInputError as e:
            raise PlanError(str(e), key=key, file=file) from None
        if target.target_macs not in targets:
            raise PlanError(f"the plan's own target ({target.target_macs:,} MACs) is not "
                            f"among them ({', '.join(f'{t:,}' for t in targets)})",
                            key=key, file=file)
        out[method] = {"target": tuple(sorted(targets, reverse=True))}
        base = count_macs(target.graph)
        for name, src in proxies.items():
            own = count_macs(src.graph)
            mine = tuple(sorted({max(1, round(t / base * own)) for t in targets}, reverse=True))
            try:
                for t in mine:
                    fits(src.graph, t)
            except UserInputError as e:
                raise PlanError(f"on proxy '{name}': {e}", key=key, file=file) from None
            out[method][name] = mine
    return out
