"""A plan expands into units: the steps of the protocol, a DAG run in dependency order.

    search/uniform/target                       the baseline (no training)
    search/METHOD/target                        direct search on the target
    search/METHOD/PROXY                         search on a proxy
    pick/METHOD/SOURCE                          the plan's target from a search serving several
                                                (`share_targets`; no training)
    transfer/METHOD/PROXY[/RULE]                proxy widths → target (RULE for depth proxies)
    train/ROW/seedS                             final training of one row's widths, one seed
    eval/ROW/seedS                              test-set top-1 of that training (only here)

A row is one (method, source) of the report: `uniform`, `METHOD/direct`, `METHOD/PROXY[/RULE]`.
Each unit's input hash covers the plan section it reads and its upstream units' output hashes,
so a changed proxy changes the hashes of exactly the units downstream of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wtc.experiment.execute import UNIT_KINDS
from wtc.experiment.plan import Plan, Source, digest
from wtc.experiment.plan_cost import cost_params

PROTOCOL = "wtc.experiment/1"  # bump when a unit's meaning changes: every hash changes


@dataclass(frozen=True)
class Unit:
    id: str
    kind: str
    params: dict[str, Any]  # what the unit does (JSON), read from the plan
    deps: tuple[str, ...] = ()
    labels: dict[str, Any] = field(default_factory=dict)  # for the report: row, method, ...

    def input_hash(self, upstream: dict[str, str]) -> str:
        """Hash of the unit's parameters and its upstream units' output hashes."""
        return digest({"protocol": PROTOCOL, "kind": self.kind, "params": self.params,
                       "deps": {d: upstream[d] for d in self.deps}})

    def content_key(self, upstream: dict[str, dict[str, Any]]) -> str:
        """Like the input hash, but of what the unit reads from its upstream outputs and blind
        to the upstream units' names: two units with equal keys compute the same outputs (e.g.
        the trainings of two rows whose transfers gave the same widths by different stacking
        rules), so the driver runs one and shares it with the other."""
        keys = UNIT_KINDS.get(self.kind).consumes
        inputs = [digest({k: upstream[d].get(k) for k in keys} if keys else upstream[d])
                  for d in self.deps]
        return digest({"protocol": PROTOCOL, "kind": self.kind, "params": self.params,
                       "inputs": inputs})


@dataclass(frozen=True)
class Row:
    """One (method, source) of the report and the units that make it."""

    id: str
    method: str
    source: str  # "uniform", "direct", "PROXY" or "PROXY/RULE"
    proxy: str | None
    rule: str | None
    search: str  # the search unit whose cost the row pays
    widths: str  # the unit whose output are the target's widths
    pick: str | None = None  # the pick unit of a shared search (its details for this target)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if out["pick"] is None:  # rows of plans without shared searches: as they always were
            out.pop("pick")
        return out


def rows(plan: Plan) -> list[Row]:
    out = [Row("uniform", "uniform", "uniform", None, None, "search/uniform/target",
               "search/uniform/target")]
    for m in plan.methods:
        pick = _pick(plan, m, "target")
        out.append(Row(f"{m}/direct", m, "direct", None, None, f"search/{m}/target",
                       pick or f"search/{m}/target", pick))
        for name, src in plan.proxies.items():
            for rule in src.stacking:
                tail = f"{name}/{rule}" if len(src.stacking) > 1 or _deeper(plan, src) else name
                out.append(Row(f"{m}/{tail}", m, tail, name,
                               rule if tail != name else None, f"search/{m}/{name}",
                               f"transfer/{m}/{tail}", _pick(plan, m, name)))
    return out


def _pick(plan: Plan, method: str, source: str) -> str | None:
    """The pick unit of `method`'s search on `source` when that search is shared."""
    return f"pick/{method}/{source}" if source in plan.shared.get(method, {}) else None


def _deeper(plan: Plan, src: Source) -> bool:
    return [s.depth for s in src.spec.stages] != [s.depth for s in plan.target.spec.stages]


def expand(plan: Plan) -> list[Unit]:
    """Every unit of the plan, in a dependency order (a unit after its upstream units)."""
    units: list[Unit] = []
    target_text = plan.target.spec_text
    config, eval_data = plan.train.as_given(), plan.eval_data.as_given()  # serialized once
    runtime = {"runtime": plan.runtime} if plan.runtime else {}
    # a non-MACs cost rides on the units priced on the target (absent for MACs: unchanged)
    cost = {"cost": cost_params(plan)} if plan.cost is not None else {}
    units.append(Unit("search/uniform/target", "search",
                      {"method": "uniform", "settings": {}, "spec": target_text,
                       "target_macs": plan.target_macs, **cost},
                      labels={"method": "uniform", "source": "target"}))
    for m, settings in plan.methods.items():
        for src in plan.sources:
            shared = plan.shared.get(m, {}).get(src.name)
            # a shared search names its targets, not the plan's: sibling plans share the unit
            aim = {"targets": list(shared)} if shared else {"target_macs": src.target_macs}
            search_id, labels = f"search/{m}/{src.name}", {"method": m, "source": src.name}
            units.append(Unit(search_id, "search", {
                "method": m, "settings": src.settings(settings), "spec": src.spec_text,
                **aim, "data": src.data.as_given(),
                "seed": plan.model.search.seed, "projection": src.projection, **runtime,
                **(cost if src.is_target else {}),
            }, labels=labels))
            if shared:
                units.append(Unit(f"pick/{m}/{src.name}", "pick",
                                  {"method": m, "target_macs": src.target_macs},
                                  deps=(search_id,), labels=labels))
    units += curve_units(plan, runtime)
    all_rows = rows(plan)
    for row in all_rows:
        if row.proxy is None:
            continue
        src = plan.proxies[row.proxy]
        units.append(Unit(row.widths, "transfer", {
            "source_spec": src.spec_text, "spec": target_text, "stacking": row.rule or "last",
            "target_macs": plan.target_macs, **cost,
        }, deps=(row.pick or row.search,), labels={"method": row.method, "source": row.source}))
    for row in all_rows:
        for seed in plan.seeds:
            train_id = f"train/{row.id}/seed{seed}"
            labels = {"row": row.id, "method": row.method, "source": row.source, "seed": seed}
            units.append(Unit(train_id, "train", {
                "spec": target_text, "config": config, "seed": seed, **runtime,
            }, deps=(row.widths,), labels=labels))
            units.append(Unit(f"eval/{row.id}/seed{seed}", "eval", {
                "spec": target_text, "data": eval_data, **runtime,
            }, deps=(train_id,), labels=labels))
    return units


def curve_points(plan: Plan) -> list[dict[str, Any]]:
    """The search-length curve's points: method, source, epochs (the method's setting; on a
    proxy its `search_epochs` scales it, as for the proxy's own searches: `run_epochs`), and
    the units giving its search (cost, held-out top-1) and its widths on the target (a
    transfer for proxies)."""
    if plan.model.curve is None:
        return []
    out = []
    for m, settings in plan.methods.items():
        if "epochs" not in settings:
            continue
        for name in plan.model.curve.sources:
            src = plan.target if name == "target" else plan.proxies[name]
            for e in plan.model.curve.epochs:
                tag = f"{name}@e{e}"
                run = src.settings({**settings, "epochs": e})["epochs"]  # a proxy's scale
                pick = _pick(plan, m, name) and f"pick/{m}/{tag}"  # a shared search's
                out.append({"method": m, "source": name, "epochs": e, "run_epochs": run,
                            "search": f"search/{m}/{tag}",
                            "widths": (pick or f"search/{m}/{tag}") if name == "target"
                            else f"transfer/{m}/{tag}", **({"pick": pick} if pick else {})})
    return out


def curve_units(plan: Plan, runtime: dict[str, Any]) -> list[Unit]:
    """The searches (and, from proxies, transfers) of the search-length curve."""
    units = []
    for p in curve_points(plan):
        src = plan.target if p["source"] == "target" else plan.proxies[p["source"]]
        labels = {"method": p["method"], "source": p["source"], "curve_epochs": p["epochs"]}
        shared = plan.shared.get(p["method"], {}).get(p["source"])
        aim = {"targets": list(shared)} if shared else {"target_macs": src.target_macs}
        units.append(Unit(p["search"], "search", {
            "method": p["method"],
            "settings": {**src.settings(plan.methods[p["method"]]), "epochs": p["run_epochs"]},
            "spec": src.spec_text, **aim, "data": src.data.as_given(),
            "seed": plan.model.search.seed, "projection": src.projection, **runtime,
        }, labels=labels))
        if "pick" in p:
            units.append(Unit(p["pick"], "pick", {"method": p["method"],
                                                  "target_macs": src.target_macs},
                              deps=(p["search"],), labels=labels))
        if p["widths"] not in (p["search"], p.get("pick")):
            units.append(Unit(p["widths"], "transfer", {
                "source_spec": src.spec_text, "spec": plan.target.spec_text,
                "stacking": src.stacking[0], "target_macs": plan.target_macs,
            }, deps=(p.get("pick") or p["search"],), labels=labels))
    return units


def noop_units(n: int, sleep: float = 0.0, chain: bool = False) -> list[Unit]:
    """`n` units that do nothing (scheduling-overhead benchmark and tests); `chain` makes each
    depend on the previous one."""
    return [Unit(f"noop/{i}", "noop", {"i": i, "sleep": sleep},
                 deps=(f"noop/{i - 1}",) if chain and i else ()) for i in range(n)]


def check_dag(units: list[Unit]) -> None:
    """Unique ids, known kinds, and every dependency before its dependant."""
    seen: set[str] = set()
    for u in units:
        if u.id in seen:
            raise ValueError(f"unit '{u.id}' appears twice")
        if u.kind not in UNIT_KINDS:
            raise ValueError(f"unit '{u.id}' has unknown kind '{u.kind}'")
        missing = [d for d in u.deps if d not in seen]
        if missing:
            raise ValueError(f"unit '{u.id}' depends on '{missing[0]}', which is not before it")
        seen.add(u.id)
