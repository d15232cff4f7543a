"""The dry run: every unit with its projected training MACs, before anything runs.

Training MACs = 3 × forward MACs per image × images (`wtc.graph.training_macs`: forward +
backward ≈ 3 × forward).
A search's projection comes from its optimizer's declared
`Optimizer.estimate_train_macs(graph, settings, *, images, target_macs, val_images)` (MorphNet:
its λ ladder and scoring runs); a method that returns None there is counted as one training of
the spec at its base widths for the method's `epochs` (1 if it has none). Images = training
images × the search's fraction × (1 − held-out share) × kept classes. No data is read, so this
works for specs whose data is absent (give `data.train_images` in the plan for an ImageFolder
tree).

The overhead ratio of a proxy search is direct search MACs ÷ proxy search MACs (same method).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wtc.errors import PlanError
from wtc.experiment.plan import Plan, Source
from wtc.experiment.units import Unit, expand
from wtc.graph import count_macs, training_macs


@dataclass(frozen=True)
class Projection:
    unit: str
    kind: str
    train_macs: int
    ratio: float | None = None  # direct ÷ this search (proxy searches only)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "kind": self.kind, "train_macs": self.train_macs,
                "overhead_ratio": self.ratio, "note": self.note}


def search_images(plan: Plan, src: Source) -> float:
    n = _train_images(plan)
    share = src.data.fraction * (1.0 - src.data.val_split)
    classes = src.data.classes
    if classes:
        share *= len(classes) / plan.target.spec.classes
    return n * share


def search_macs(plan: Plan, method: str, src: Source, epochs: int | None = None) -> int:
    """Projected training MACs of one search of `method` on `src` (`epochs`: a search-length
    curve point's, instead of the plan's)."""
    from wtc.optimizers import get_optimizer

    cls = get_optimizer(method)
    if not cls.needs_data:  # trains nothing (uniform, capacity)
        return 0
    settings = _settings(plan, method, src, epochs)
    images = search_images(plan, src)
    split = src.data.val_split
    target = plan.cost_macs if src.is_target and plan.cost_macs else src.target_macs
    shared = plan.shared.get(method, {}).get(src.name)
    val_images = images * split / (1.0 - split)
    if shared:  # one search serves them all
        estimate = cls.estimate_shared_train_macs(src.graph, settings, images=images,
                                                  targets=shared, val_images=val_images)
    else:
        estimate = cls.estimate_train_macs(src.graph, settings, images=images,
                                           target_macs=target, val_images=val_images)
    if estimate is not None:
        return int(estimate)
    epochs = int(getattr(settings, "epochs", 1) or 1)
    return int(training_macs(count_macs(src.graph), images) * epochs)


def _settings(plan: Plan, method: str, src: Source, epochs: int | None) -> Any:
    """The method's settings as its search on `src` runs them (`search_epochs` applied)."""
    from wtc.optimizers import validate_settings

    chosen = src.settings(plan.methods[method])
    if epochs is not None:
        chosen = {**chosen, "epochs": epochs}
    return validate_settings(method, chosen)


def search_passes(plan: Plan, method: str, src: Source, epochs: int | None = None) -> str:
    """What a search on `src` trains on: images × epochs (its decisions' held-out images
    apart), so a plan whose proxy sees fewer image-passes than intended shows it before any
    unit runs; '' for a method that trains nothing."""
    from wtc.optimizers import get_optimizer

    if not get_optimizer(method).needs_data:
        return ""
    n = getattr(_settings(plan, method, src, epochs), "epochs", None)
    images = search_images(plan, src)
    return f"{images:,.0f} images" + (f" x {n} epochs" if n is not None else "")


def project(plan: Plan) -> list[Projection]:
    """Projected training MACs of every unit (and the proxy searches' overhead ratios)."""
    out: list[Projection] = []
    direct = {m: search_macs(plan, m, plan.target) for m in plan.methods}
    train_images = _train_images(plan) * plan.train.data.fraction
    epochs = plan.train.epochs
    for u in expand(plan):
        out.append(_unit(plan, u, direct, train_images, epochs))
    return out


def _unit(plan: Plan, u: Unit, direct: dict[str, int], train_images: float, epochs: int
          ) -> Projection:
    if u.kind == "search":
        m, src_name = u.labels["method"], u.labels["source"]
        src = plan.target if src_name == "target" else plan.proxies[src_name]
        if "curve_epochs" in u.labels:
            macs, ratio = search_macs(plan, m, src, u.labels["curve_epochs"]), None
        else:
            macs = direct.get(m, 0) if src.is_target else search_macs(plan, m, src)
            ratio = direct[m] / macs if (not src.is_target and macs) else None
        notes = [search_passes(plan, m, src, u.labels.get("curve_epochs"))]
        if not has_estimate(m):
            notes.append("lower bound (the method has no estimate)")
        return Projection(u.id, u.kind, macs, ratio, "; ".join(n for n in notes if n))
    if u.kind == "train":
        macs = plan.cost_macs or plan.target_macs  # a latency target: its uniform MACs
        return Projection(u.id, u.kind, int(training_macs(macs, train_images) * epochs))
    if u.kind == "eval":
        n = plan.test_images
        note = f"{(plan.cost_macs or plan.target_macs) * n:.3g} forward MACs" if n else ""
        return Projection(u.id, u.kind, 0, note=note)
    return Projection(u.id, u.kind, 0)


def has_estimate(method: str) -> bool:
    """Whether the dry run's number for `method` is its own (a method that trains nothing
    costs nothing; one that trains without an estimate is counted as a lower bound)."""
    from wtc.optimizers import get_optimizer

    cls = get_optimizer(method)
    return not cls.needs_data or cls.has_estimate()


def _train_images(plan: Plan) -> int:
    if plan.train_images is None:
        raise PlanError(f"the number of training images of '{plan.model.data.get('data')}' is "
                        "not known without reading it; give data.train_images (e.g. 1281167 "
                        "for ImageNet)", key="data.train_images", file=plan.file)
    return int(plan.train_images)


def summary(plan: Plan, projections: list[Projection], status: Any = None) -> dict[str, Any]:
    """Totals and per (method, proxy) overhead ratios; with a `LedgerStatus`, also what the
    ledger records and what is left to run (units and projected MACs)."""
    ratios = {p.unit: p.ratio for p in projections if p.ratio is not None}
    by_kind: dict[str, int] = {}
    for p in projections:
        by_kind[p.kind] = by_kind.get(p.kind, 0) + p.train_macs
    return {"plan": plan.name, "target": plan.target.spec.name, "target_macs": plan.target_macs,
            "units": len(projections), "train_macs": by_kind,
            "total_train_macs": sum(by_kind.values()), "overhead_ratios": ratios,
            **(_split(projections, status) if status is not None else {})}


def _split(projections: list[Projection], status: Any) -> dict[str, Any]:
    """Units and projected MACs by ledger status: recorded, copied from `--reuse`, shared with
    another unit computing the same (neither of those runs), and to run; the seconds the
    recorded and copied units took, and the units to run at the rate (training MACs per
    second, per unit kind and method, else per kind: `unit_rates`) the recorded and copied
    ones ran at, or where none of those is of their kind, the rate the `--reuse` folders ran
    it at (`rates_from_reuse` names those kinds): an estimate. `seconds_estimate` prices them
    all, else is None; `priced_seconds` prices those of the kinds measured and `unpriced`
    counts the others (units, MACs, kinds), so a half-measured plan still gets a partial
    figure. `interrupted`: the units to run that
    continue from a killed attempt's checkpoints (or, `running`: a driver is running them now),
    and the seconds spent on them so far; the estimate prices such a unit at what is left of
    its own estimate after those seconds (none when they exceed it: the unit ran slower than
    its kind's rate, and how much of it is left is not known)."""
    parts: dict[str, dict[str, Any]] = {k: {"units": 0, "train_macs": 0}
                                        for k in ("recorded", "copied", "shared", "to_run")}
    for k in ("recorded", "copied"):
        parts[k]["seconds"] = 0.0
    for p in projections:
        part = parts[status.of(p.unit).replace(" ", "_")]
        part["units"] += 1
        part["train_macs"] += p.train_macs
        if p.unit in status.measured:
            part["seconds"] += status.measured[p.unit][1]
    left = _costly_left(projections, status)
    rates, borrowed = unit_rates(projections, status)
    priced = [p for p in left if p.unit in rates]
    unpriced = [p for p in left if p.unit not in rates]
    seconds = round(sum(_left(p, rates[p.unit], status.interrupted) for p in priced), 1)
    parts["to_run"].update(
        seconds_estimate=None if unpriced else seconds, priced_seconds=seconds,
        priced_units=len(priced), rates_from_reuse=borrowed,
        interrupted={"units": len(status.interrupted),
                     "seconds": round(sum(status.interrupted.values()), 1),
                     "running": status.running},
        unpriced={"units": len(unpriced), "train_macs": sum(p.train_macs for p in unpriced),
                  "kinds": sorted({p.kind for p in unpriced})})
    for k in ("recorded", "copied"):
        parts[k]["seconds"] = round(parts[k]["seconds"], 1)
    return parts


def _costly_left(projections: list[Projection], status: Any) -> list[Projection]:
    """The units still to run that train (the others cost no training time)."""
    return [p for p in projections if status.of(p.unit) == "to run" and p.train_macs]


def unit_rates(projections: list[Projection], status: Any
               ) -> tuple[dict[str, list[float]], list[str]]:
    """The [training MACs, seconds] rate each unit still to run that trains is priced at, and
    the kinds of those priced at a `--reuse` folder's rate. For each of `rate_keys`, finest
    first (a search's method and network, the kind and method, the kind): what this plan's
    recorded and copied units measured, then what the `--reuse` folders did
    (`status.reference`)."""
    from wtc.experiment.status import rate_keys

    here: dict[str, list[float]] = {}
    for p in projections:
        macs, seconds = status.measured.get(p.unit, (0, 0.0))
        if macs and seconds:
            for key in set(rate_keys(p.unit, p.kind)):
                got = here.setdefault(key, [0.0, 0.0])
                got[0] += macs
                got[1] += seconds
    rates: dict[str, list[float]] = {}
    borrowed: set[str] = set()
    for p in _costly_left(projections, status):
        for key in rate_keys(p.unit, p.kind):
            if key in here:
                rates[p.unit] = here[key]
                break
            if key in status.reference:  # not run here yet: at the rate the --reuse folders ran
                rates[p.unit] = list(status.reference[key])
                borrowed.add(p.kind)
                break
    return rates, sorted(borrowed)


def unit_estimates(projections: list[Projection], status: Any) -> dict[str, float]:
    """Seconds each unit still to run is expected to take, as the dry run prices it (0 for a
    unit that trains nothing); a unit of a kind nothing has measured has no entry."""
    rates, _ = unit_rates(projections, status)
    out = {p.unit: _left(p, rates[p.unit], status.interrupted) if p.train_macs else 0.0
           for p in projections if status.of(p.unit) == "to run"
           and (not p.train_macs or p.unit in rates)}
    # a unit sharing a twin's computation runs in its place when the twin has not run yet
    out.update({u: out[twin] for u, twin in status.shared.items() if twin in out})
    return out


def _left(p: Projection, rate: list[float], spent: dict[str, float]) -> float:
    """Seconds `p` still needs at its kind's rate (MACs, seconds): its whole estimate, less what
    an interrupted attempt of it already spent (its checkpoints keep that work)."""
    return max(0.0, p.train_macs * rate[1] / rate[0] - spent.get(p.unit, 0.0))
