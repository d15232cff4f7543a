"""Validating and running a search: a `SearchRequest` (what is asked, as given), `prepare`
(everything validated at once, before any training: method, settings with the request's epochs
merged in, MACs targets, data, runtime; no data read), `run_prepared` (times the run and wraps
the outcome into `Widths` with full provenance: method, settings, seed, data, MACs target and
achieved, cost) and `search`, the two in one.

No torch here until a method trains.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from wtc.errors import ConfigError
from wtc.graph import SpecLike, StageGraph, as_graph
from wtc.graph.cost_registry import parse_cost
from wtc.graph.costmodel import is_default
from wtc.limits import MAX_SEED
from wtc.numbers import bounded
from wtc.optimizers.base import (
    Optimizer,
    SearchContext,
    SearchResult,
    get_optimizer,
    has_grouped_conv,
    multi_target_methods,
    validate_settings,
)
from wtc.optimizers.targets import resolve_targets
from wtc.widths import Widths, cost_record, scale_to_macs, widths_from_groups

__all__ = ["SearchRequest", "prepare", "run_prepared", "search"]


def _data_config(data: Any, seed: int, fraction: float | None) -> Any:
    """The search's `wtc.data.DataConfig`, seeded by the search (and cut to `fraction`): a
    DataConfig is used as it is (parsed already), a dataset name or a mapping is validated
    here, once."""
    from wtc.data import DataConfig  # torch-backed package; only when data is given

    if data is None:
        return None
    if isinstance(data, DataConfig):
        update: dict[str, Any] = {"seed": bounded(seed, "seed", lo=0, hi=MAX_SEED,
                                                  integer=True)}
        if fraction is not None:
            update["fraction"] = bounded(fraction, "fraction", lo=0.0, lo_open=True, hi=1.0)
        return data.model_copy(update=update)
    if isinstance(data, str):
        data = {"data": data}
    if not isinstance(data, Mapping):
        raise ConfigError(f"data must be a dataset name, a mapping or a DataConfig, not "
                          f"{type(data).__name__}")
    training = sorted(k for k in data if k in _TRAIN_ONLY)
    if training:  # silently dropped, they would look applied
        raise ConfigError(f"bad data settings: {', '.join(training)} belong to the search's "
                          "training: give them in the method's settings (epochs also as "
                          "epochs=)")
    values = dict(data)
    values["seed"] = seed
    if fraction is not None:
        values["fraction"] = fraction
    try:
        return DataConfig(**values)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in er['loc']) or 'data'}: {er['msg']}"
                             for er in e.errors())
        raise ConfigError(f"bad data settings: {problems}") from None


# TrainConfig keys that are not data: the optimizer's settings own them (named, when a data
# mapping carries one, instead of "extra inputs are not permitted")
_TRAIN_ONLY = frozenset({"epochs", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                         "warmup_epochs", "label_smoothing", "grad_clip", "device",
                         "precision", "channels_last", "threads", "eval_every", "out"})


@dataclass(frozen=True)
class SearchRequest:
    """What a search is asked to do, as given; `prepare` validates all of it at once.

    target_macs: None = the spec's own MACs; "0.5x" = a multiple of them; a number (or "41M")
    = absolute; several (a list, "0.25x,0.5x") for methods that serve several in one run.
    settings: the method's settings (mapping or its Settings model). data: a dataset name, a
    mapping of `wtc.data.DataConfig` fields or a DataConfig (methods that train need it);
    `fraction` overrides its share of training images. seed seeds the model init, the data
    subset and the shuffling: the same seed gives the same widths. epochs: the training budget
    (merged into the method's `epochs` setting). init(model): called on the freshly built model
    before training. run_dir: keep training checkpoints there (one folder per round); resume:
    continue an interrupted search from them (a finished round is not trained again).
    """

    method: str = "morphnet"
    target_macs: Any = None
    settings: BaseModel | Mapping[str, Any] | None = None
    data: Any = None
    seed: int = 0
    epochs: int | None = None
    fraction: float | None = None
    init: Callable[[Any], None] | None = None
    device: str = "auto"
    threads: int | None = None
    progress: str = "none"
    settings_source: str | None = None  # where the settings came from, for messages
    run_dir: str | Path | None = None
    resume: bool = False
    cost: Any = None  # the cost model targets are in: a CostModel, "macs", "params", "latency:T"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto: bf16 where the hardware runs it)
    channels_last: bool | str = "auto"  # auto | True | False; both recorded in the provenance


def prepare(spec: SpecLike, request: SearchRequest) -> tuple[Optimizer, SearchContext, BaseModel]:
    """Validate a search without running it: (optimizer, context, settings with the request's
    epochs merged in). Raises a UserInputError (unknown method, bad settings, unreachable
    target, no data); reads no data."""
    r = request
    graph = as_graph(spec)
    opt = get_optimizer(r.method)()
    cfg = validate_settings(r.method, r.settings, r.settings_source)
    model = parse_cost(r.cost)
    model = None if is_default(model) else model  # MACs: the path every committed run took
    if model is not None:
        model.check(graph)
    targets = resolve_targets(graph, r.target_macs, model)
    if len(targets) > 1 and not opt.multi_target:
        raise ConfigError(f"method '{r.method}' serves one MACs target per run; give one "
                          f"(methods that serve several: {', '.join(multi_target_methods())})")
    # the smallest network (every group at the divisor) must fit: the same check for all methods
    for t in targets:
        scale_to_macs(graph, {g: float(graph.groups[g].base) for g in graph.free_groups}, t,
                      cost=model)
    _check_runtime(r)
    if opt.needs_data and r.data is None:
        raise ConfigError(f"method '{r.method}' trains a network: give data (for example "
                          "data='fashion-mnist' or data={'data': 'synthetic'})")
    if r.epochs is not None and "epochs" in type(cfg).model_fields:
        cfg = cfg.model_copy(update={"epochs": int(r.epochs)})
    data = _data_config(r.data, int(r.seed), r.fraction) if opt.needs_data else None
    runtime = _runtime(r.precision, r.channels_last, r.device, graph) if opt.needs_data else {}
    ctx = SearchContext(graph=graph, target_macs=targets[0], seed=int(r.seed), data=data,
                        device=r.device, threads=r.threads, progress=r.progress, init=r.init,
                        run_dir=Path(r.run_dir) if r.run_dir is not None else None,
                        resume=r.resume, targets=tuple(targets), cost=model, **runtime)
    opt.check(ctx, cfg)
    return opt, ctx, cfg


def _check_runtime(r: SearchRequest) -> None:
    if r.epochs is not None and (isinstance(r.epochs, bool) or int(r.epochs) < 1):
        raise ConfigError(f"epochs must be a positive integer, got {r.epochs!r}")
    if r.threads is not None and int(r.threads) < 1:
        raise ConfigError(f"threads must be a positive integer, got {r.threads!r}")
    if r.progress not in ("auto", "rich", "plain", "none"):
        raise ConfigError(f"progress must be auto, rich, plain or none, not {r.progress!r}")
    if r.resume and r.run_dir is None:
        raise ConfigError("resume needs the run directory of the interrupted search (run_dir)")
    if r.resume and not Path(r.run_dir).is_dir():  # type: ignore[arg-type]
        raise ConfigError(f"cannot resume: {r.run_dir} is not a search run directory")
    if r.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, not {r.precision!r}")
    if r.channels_last not in (True, False, "auto"):
        raise ConfigError(f"channels_last must be true, false or auto, not {r.channels_last!r}")


def _runtime(precision: str, channels_last: bool | str, device: str, graph: StageGraph
             ) -> dict[str, Any]:
    """The concrete precision and memory format of a search that trains (`auto` resolved
    for `device`; torch-side, so only for methods that train)."""
    from wtc.trainer import resolve_device, resolve_runtime

    rt = resolve_runtime(precision, channels_last, resolve_device(device),
                         grouped_conv=has_grouped_conv(graph))
    return {"precision": rt.precision, "channels_last": rt.channels_last}


def run_prepared(opt: Optimizer, ctx: SearchContext, cfg: BaseModel) -> SearchResult:
    """Run a validated search and wrap its outcome into Widths with provenance."""
    t0 = time.perf_counter()
    outcome = opt.run(ctx, cfg)
    seconds = time.perf_counter() - t0
    graph = ctx.graph
    data = None
    if ctx.data is not None:
        data = ctx.data.model_dump(exclude_defaults=True)
        data["data"] = ctx.data.data
    settings = cfg.model_dump(mode="json")

    def wrap(groups: dict[str, int], target: int) -> Widths:
        extra = {} if ctx.cost is None else {
            "cost_model": cost_record(graph, ctx.cost, groups, target)}
        extra.update(outcome.per_target_details.get(target, {}))
        return widths_from_groups(
            graph, groups, target_macs=target if ctx.cost is None else None, method=opt.name,
            settings=settings, seed=ctx.seed, data=data,
            cost={"train_macs": int(outcome.train_macs), "seconds": round(seconds, 3)},
            **({"runtime": ctx.runtime} if ctx.data is not None else {}),
            **{**outcome.details, **extra})

    per_target = {t: wrap(g, t) for t, g in outcome.per_target.items()}
    widths = per_target.get(ctx.target_macs) or wrap(outcome.groups, ctx.target_macs)
    return SearchResult(widths=widths, method=opt.name, settings=settings,
                        target_macs=ctx.target_macs, train_macs=int(outcome.train_macs),
                        seconds=seconds, history=outcome.history, details=outcome.details,
                        per_target=per_target,
                        per_target_details=dict(outcome.per_target_details))


def search(spec: SpecLike, method: str = "morphnet", target_macs: Any = None,
           settings: BaseModel | Mapping[str, Any] | None = None, data: Any = None,
           seed: int = 0, *, out: str | Path | None = None, **options: Any) -> SearchResult:
    """Find widths for `spec` (StageGraph, Spec or YAML path) at `target_macs` with `method`.

    The arguments, and `options` (epochs, fraction, init, device, threads, progress, run_dir,
    resume, cost, precision, channels_last), are the fields of `SearchRequest`, which says what each
    means. out: also write widths.json there (atomically). Everything is validated before any
    training starts.
    """
    request = SearchRequest(method, target_macs, settings, data, seed, **options)
    opt, ctx, cfg = prepare(spec, request)
    if out is not None and not Path(out).parent.exists():
        from wtc.errors import WriteError

        raise WriteError(Path(out), f"folder {Path(out).parent} does not exist")
    result = run_prepared(opt, ctx, cfg)
    if out is not None:
        result.save(out)
    return result
