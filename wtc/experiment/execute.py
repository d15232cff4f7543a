"""What one unit does, in a worker (a pool process, a Ray task or the driver itself).

`run_unit(payload) -> result` takes plain data (the unit's parameters, its upstream units'
outputs and artifacts, the runtime: threads, device, a work folder) and returns plain data:
outputs (JSON, deterministic given the seeds: they are hashed), training MACs, artifacts
(bytes) and timing. Nothing here writes the ledger; only the driver does. Errors come back as
data too, so a worker never has to pickle an exception.

The test set is read in `eval` units only: searches decide on a held-out split of the training
set, and final trainings do not evaluate.
"""

from __future__ import annotations

import hashlib
import io
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtc.errors import UserInputError
from wtc.experiment.unit_clock import UnitClock
from wtc.registry import Registry

if TYPE_CHECKING:
    from wtc.graph import StageGraph


@dataclass(frozen=True)
class UnitKind:
    """Everything the driver and the workers know about one kind of unit, in one place."""

    name: str
    run: Callable[[dict[str, Any]], dict[str, Any]]  # payload → result, in a worker
    consumes: tuple[str, ...] | None = None  # the upstream outputs it reads (None: all)
    priority: int = 4  # among ready units, the lower starts first
    keeps_work: bool = False  # a work folder for resumable checkpoints, removed once recorded


def run_unit(payload: dict[str, Any]) -> dict[str, Any]:
    """Execute one unit; never raises (errors are returned under "error"). A unit with a work
    folder (it resumes from its checkpoints there) records its seconds over all its attempts
    (`UnitClock`), and, when it took more than one attempt, how many and the seconds of the
    earlier ones (its kind's own timing, `search_seconds` say, covers the last attempt)."""
    t0 = time.perf_counter()
    try:
        fn = UNIT_KINDS.get(payload["kind"]).run
        if not payload.get("work_dir"):
            result = fn(payload)
            result["seconds"] = time.perf_counter() - t0
            return result
        with UnitClock(Path(payload["work_dir"])) as clock:
            result = fn(payload)
        result["seconds"] = clock.seconds()
        if clock.attempt > 1:
            result["timing"] = {**(result.get("timing") or {}), "attempts": clock.attempt,
                                "earlier_seconds": round(clock.before, 3)}
        return result
    except UserInputError as e:
        return {"error": {"type": type(e).__name__, "message": str(e), "user": True},
                "seconds": time.perf_counter() - t0}
    except Exception as e:  # reported by the driver with the unit's id
        return {"error": {"type": type(e).__name__, "message": str(e), "user": False,
                          "traceback": traceback.format_exc()},
                "seconds": time.perf_counter() - t0}


def _threads(payload: dict[str, Any]) -> int | None:
    n = payload.get("threads")
    if n:
        import torch

        torch.set_num_threads(int(n))
    return n


def _runtime(params: dict[str, Any]) -> dict[str, Any]:
    """The unit's requested precision and memory format (absent: fp32 NCHW, what units ran in
    before these settings existed)."""
    from wtc.experiment.source import LEGACY_RUNTIME

    return {**LEGACY_RUNTIME, **(params.get("runtime") or {})}


def _graph(text: str) -> StageGraph:
    from wtc.graph import compile_spec
    from wtc.spec import parse_spec

    return compile_spec(parse_spec(text, source="<plan>"))


def profile(graph: StageGraph, groups: dict[str, int]) -> list[list[Any]]:
    """[group, base, width] of every free group, in network order."""
    return [[g, graph.groups[g].base, int(groups[g])] for g in graph.free_groups]


def clean(obj: Any) -> Any:
    """JSON-safe copy without wall-clock fields (outputs must be deterministic)."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()
                if not str(k).startswith(("seconds", "time"))}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


# --------------------------------------------------------------------------- kinds


def _noop(payload: dict[str, Any]) -> dict[str, Any]:
    sleep = float(payload["params"].get("sleep", 0.0))
    if sleep:
        time.sleep(sleep)
    return {"outputs": {"i": payload["params"]["i"]}, "train_macs": 0}


def _search(payload: dict[str, Any]) -> dict[str, Any]:
    from wtc.optimizers import search

    p = payload["params"]
    graph = _graph(p["spec"])
    cost = _cost(p)
    if p["method"] == "uniform":
        res = search(graph, "uniform", target_macs=p["target_macs"], cost=cost)
    else:  # a shared search (`share_targets`) serves every one of its `targets` in one run
        # checkpoints in the work folder (if any; `run_unit`'s clock has made it): a search
        # killed mid-way continues there (bit-exactly) in the next run instead of starting
        # over; an empty folder starts afresh
        work = Path(payload["work_dir"]) if payload.get("work_dir") else None
        res = search(graph, p["method"], target_macs=p.get("targets", p.get("target_macs")),
                     settings=p["settings"], data=p["data"], seed=p["seed"],
                     threads=_threads(payload), device=payload.get("device", "cpu"),
                     progress="none", cost=cost, run_dir=work, resume=work is not None,
                     **_runtime(p))
    outputs = {"spec": {"name": graph.spec.name, "hash": graph.spec_hash},
               "groups": dict(res.groups), "macs": res.macs, "target_macs": res.target_macs,
               "profile": profile(graph, res.groups), "details": clean(res.details),
               "history": clean(res.history)}
    if "targets" in p:
        outputs = _shared_outputs(graph, res, outputs)
    if cost is not None:
        outputs["cost_model"] = res.widths.provenance["cost_model"]
    used = res.widths.provenance.get("runtime")
    return {"outputs": outputs, "train_macs": res.train_macs,
            "timing": {"search_seconds": round(res.seconds, 3)},
            **({"runtime": used} if used else {})}


def _shared_outputs(graph: StageGraph, res: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    """A shared search's outputs: what all its targets share (details, history) and, per
    target, the widths and the details of its own (AutoSlim: the trajectory step). No
    top-level widths: only a `pick` unit hands widths on."""
    own = {k for d in res.per_target_details.values() for k in d}
    targets = {str(t): {"groups": dict(w.groups), "macs": int(w.macs or 0), "target_macs": t,
                        "profile": profile(graph, w.groups),
                        "details": clean(res.per_target_details.get(t, {}))}
               for t, w in res.per_target.items()}
    return {"spec": outputs["spec"], "targets": targets, "history": outputs["history"],
            "details": {k: v for k, v in outputs["details"].items() if k not in own}}


def _pick(payload: dict[str, Any]) -> dict[str, Any]:
    """The plan's own target out of a shared search's outputs (no training)."""
    p = payload["params"]
    (upstream,) = payload["inputs"].values()
    mine = upstream["targets"].get(str(p["target_macs"]))
    if mine is None:  # the plan checks its target is among the shared ones: a bug if here
        raise ValueError(f"the shared search served {sorted(upstream['targets'])}, not "
                         f"{p['target_macs']}")
    return {"outputs": {"spec": upstream["spec"], **mine}, "train_macs": 0}


def _cost(params: dict[str, Any]) -> Any:
    """The unit's cost model (None: MACs); a latency table that changed since the plan was
    read is refused (its hash is part of the unit's parameters)."""
    if "cost" not in params:
        return None
    from wtc.errors import ConfigError
    from wtc.graph.cost_registry import parse_cost

    c = params["cost"]
    model = parse_cost(c["model"])
    now = model.describe().get("table_sha256")
    if c.get("table_sha256") and now != c["table_sha256"]:
        raise ConfigError(f"the latency table of {c['model']} changed since the plan was "
                          "read (its hash differs); rerun the plan to price it afresh")
    return model


def _transfer(payload: dict[str, Any]) -> dict[str, Any]:
    from wtc.widths import widths_from_groups
    from wtc.widthtransfer import transfer

    p = payload["params"]
    (upstream,) = payload["inputs"].values()
    source, target = _graph(p["source_spec"]), _graph(p["spec"])
    w = widths_from_groups(source, upstream["groups"], method="search")
    r = transfer(w, source, target, stacking=p["stacking"], target_macs=p["target_macs"],
                 cost=_cost(p))
    outputs = {"spec": {"name": target.spec.name, "hash": target.spec_hash},
               "groups": dict(r.widths.groups), "macs": r.macs, "target_macs": r.target_macs,
               "profile": profile(target, r.widths.groups), "alpha": r.alpha,
               "stacking": r.stacking, "unmatched": list(r.unmatched)}
    if r.cost_model is not None:
        outputs["cost_model"] = r.cost_model
    return {"outputs": outputs, "train_macs": 0}


def _train(payload: dict[str, Any]) -> dict[str, Any]:
    import torch

    from wtc.experiment import torchside

    p = payload["params"]
    (upstream,) = payload["inputs"].values()
    graph = _graph(p["spec"])
    work = Path(payload["work_dir"]) if payload.get("work_dir") else None
    res = torchside.train_final(graph, upstream["groups"], {**p["config"], **_runtime(p)},
                                seed=p["seed"], threads=_threads(payload),
                                device=payload.get("device", "cpu"), work_dir=work)
    state = {k: v.detach().cpu() for k, v in res["model"].state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    outputs = {"groups": dict(upstream["groups"]), "weights": weights_hash(state),
               **clean(res["summary"])}
    return {"outputs": outputs, "train_macs": int(res["train_macs"]),
            "artifacts": {"weights.pt": buf.getvalue()},
            "timing": {"train_seconds": res.get("seconds")}, "runtime": res["runtime"]}


def _eval(payload: dict[str, Any]) -> dict[str, Any]:
    import torch

    from wtc.experiment import torchside

    p = payload["params"]
    ((dep, upstream),) = payload["inputs"].items()
    blob = payload["artifacts"][dep]["weights.pt"]
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    graph = _graph(p["spec"])
    res = torchside.evaluate_test(graph, upstream["groups"], state, p["data"],
                                  threads=_threads(payload), device=payload.get("device", "cpu"),
                                  **_runtime(p))
    return {"outputs": {"top1": res["top1"], "loss": res["loss"], "images": res["n"],
                        "weights": upstream["weights"]}, "train_macs": 0,
            "runtime": res["runtime"]}


def weights_hash(state: dict[str, Any]) -> str:
    """Hash of a state_dict's names, dtypes, shapes and values (not of a file's bytes)."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype.is_floating_point or t.numel() else b"")
    return h.hexdigest()[:16]


# finish rows before starting new searches (eval, then train, then transfer, then search): an
# interrupted or partial run then holds complete rows (widths → trainings → evaluations)
UNIT_KINDS: Registry[UnitKind] = Registry("unit kind")
for _kind in (UnitKind("search", _search, priority=3, keeps_work=True),
              UnitKind("pick", _pick, priority=2),
              UnitKind("transfer", _transfer, consumes=("groups",), priority=2),
              UnitKind("train", _train, consumes=("groups",), priority=1, keeps_work=True),
              UnitKind("eval", _eval, priority=0),
              UnitKind("noop", _noop)):
    UNIT_KINDS.add(_kind.name, _kind)
