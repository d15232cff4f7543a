"""The width-search framework: an optimizer registry, the context a run gets, its result.

An optimizer is a class with a `name`, its own pydantic `Settings` (extra="forbid") and
`run(ctx, settings) -> Outcome`. `search()` validates everything a run needs (method, settings,
MACs target, data) before any training starts, times the run, and wraps the outcome into
`Widths` with full provenance (method, settings, seed, data, MACs target and achieved, cost).

No torch here: validating a search and the uniform baseline start instantly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from wtc.errors import ConfigError
from wtc.graph import StageGraph, compile_spec
from wtc.graph.cost_registry import parse_cost
from wtc.graph.costmodel import is_default
from wtc.optimizers.targets import resolve_target, resolve_targets
from wtc.registry import Registry
from wtc.widths import Widths, cost_record, save_widths, scale_to_macs, widths_from_groups

__all__ = [
    "OPTIMIZERS", "NoSettings", "Optimizer", "Outcome", "SearchContext", "SearchResult",
    "get_optimizer", "register_optimizer", "resolve_target", "search", "validate_settings",
]


class NoSettings(BaseModel):
    """Settings of an optimizer that has none."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class SearchContext:
    """Everything an optimizer may use. `data` is a `wtc.data.DataConfig` (None: no data)."""

    graph: StageGraph
    target_macs: int
    seed: int = 0
    data: Any = None
    epochs: int | None = None  # the training budget, overriding the settings' own
    device: str = "auto"
    threads: int | None = None
    progress: str = "none"  # "auto" | "rich" | "plain" | "none"
    init: Callable[[Any], None] | None = None  # called on the freshly built model, once
    run_dir: Path | None = None  # checkpoints of the training, so an interrupted run resumes
    resume: bool = False  # continue from the checkpoints in run_dir
    targets: tuple[int, ...] = ()  # every MACs target this run serves (multi-target methods)
    # the cost model targets are counted in (`wtc.graph.costmodel`); None: MACs. With another
    # model, target_macs and targets are in its unit (seconds for latency)
    cost: Any = None
    precision: str = "fp32"  # of every forward/backward (resolved by `prepare`: never auto)
    channels_last: bool = False

    @property
    def runtime(self) -> dict[str, Any]:
        """What the search's training ran in, for the provenance."""
        return {"precision": self.precision, "channels_last": self.channels_last}


@dataclass
class Outcome:
    """What an optimizer returns: channels per free group, its cost and what it saw."""

    groups: dict[str, int]
    train_macs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # goes into the provenance
    per_target: dict[int, dict[str, int]] = field(default_factory=dict)  # target → channels


class Optimizer:
    """Base of every width optimizer; subclass, set `name` and `Settings`, register."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    needs_data: ClassVar[bool] = False
    multi_target: ClassVar[bool] = False  # one run serves several MACs targets
    summary: ClassVar[str] = ""

    def check(self, ctx: SearchContext, settings: BaseModel) -> None:
        """Extra validation before anything runs (raise a UserInputError)."""

    def run(self, ctx: SearchContext, settings: BaseModel) -> Outcome:  # pragma: no cover
        raise NotImplementedError


OPTIMIZERS: Registry[type[Optimizer]] = Registry("search method")


def register_optimizer(cls: type[Optimizer]) -> type[Optimizer]:
    """Class decorator: add an optimizer under its `name` (a duplicate is an error)."""
    if not cls.name:
        raise ConfigError(f"optimizer class {cls.__name__} has no name")
    return OPTIMIZERS.add(cls.name, cls)


def get_optimizer(method: str) -> type[Optimizer]:
    return OPTIMIZERS.get(method)


@dataclass
class SearchResult:
    """The widths found, with what the search cost and how it went."""

    widths: Widths
    method: str
    settings: dict[str, Any]
    target_macs: int
    train_macs: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    per_target: dict[int, Widths] = field(default_factory=dict)  # multi-target methods

    @property
    def groups(self) -> dict[str, int]:
        return self.widths.groups

    @property
    def macs(self) -> int:
        return int(self.widths.macs or 0)

    @property
    def held_out_top1(self) -> float | None:
        """The search's own top-1 of its widths on its held-out split (None: not measured)."""
        return search_val_top1(self.details)

    def save(self, path: str | Path) -> None:
        """widths.json, written atomically."""
        save_widths(self.widths, path)


def validate_settings(method: str, settings: BaseModel | Mapping[str, Any] | None,
                      source: str | None = None) -> BaseModel:
    """The method's settings model from a mapping (or an instance); ConfigError lists what is
    wrong and which keys exist."""
    cls = get_optimizer(method).Settings
    if isinstance(settings, cls):
        return settings
    if isinstance(settings, BaseModel):
        raise ConfigError(f"settings of type {type(settings).__name__} do not belong to "
                          f"method '{method}' (expected {cls.__name__})")
    values = dict(settings or {})
    try:
        return cls(**values)
    except ValidationError as e:
        keys = ", ".join(cls.model_fields) or "none"
        where = f" in {source}" if source else ""
        problems = "; ".join(
            f"{'.'.join(str(x) for x in er['loc']) or 'settings'}: "
            + ("unknown setting" if er["type"] == "extra_forbidden" else er["msg"])
            for er in e.errors())
        raise ConfigError(f"bad settings for method '{method}'{where}: {problems} "
                          f"(settings of '{method}': {keys})") from None


def multi_target_methods() -> list[str]:
    return [n for n in OPTIMIZERS.names() if OPTIMIZERS.get(n).multi_target]


def _graph(spec: Any) -> StageGraph:
    if isinstance(spec, StageGraph):
        return spec
    if isinstance(spec, str | Path):
        from wtc.spec import load_spec

        spec = load_spec(spec)
    return compile_spec(spec)


def _data_config(data: Any, seed: int, fraction: float | None) -> Any:
    """A `wtc.data.DataConfig` from a config, a mapping or a dataset name; seeded by the search."""
    from wtc.data import DataConfig  # torch-backed package; only when data is given

    if data is None:
        return None
    if isinstance(data, str):
        data = {"data": data}
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    if not isinstance(data, Mapping):
        raise ConfigError(f"data must be a dataset name, a mapping or a DataConfig, not "
                          f"{type(data).__name__}")
    values = {k: v for k, v in data.items() if k in DataConfig.model_fields or k not in
              _TRAIN_ONLY}
    values["seed"] = seed
    if fraction is not None:
        values["fraction"] = fraction
    try:
        return DataConfig(**values)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in er['loc']) or 'data'}: {er['msg']}"
                             for er in e.errors())
        raise ConfigError(f"bad data settings: {problems}") from None


# TrainConfig keys a caller may leave in a data mapping; the optimizer's settings own them
_TRAIN_ONLY = frozenset({"epochs", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                         "warmup_epochs", "label_smoothing", "grad_clip", "device",
                         "precision", "channels_last", "threads", "eval_every", "out"})


def prepare(spec: Any, method: str = "morphnet", target_macs: int | float | str | None = None,
            settings: BaseModel | Mapping[str, Any] | None = None, data: Any = None,
            seed: int = 0, *, epochs: int | None = None, fraction: float | None = None,
            init: Callable[[Any], None] | None = None, device: str = "auto",
            threads: int | None = None, progress: str = "none",
            settings_source: str | None = None, run_dir: str | Path | None = None,
            resume: bool = False, precision: str = "auto", channels_last: bool | str = "auto",
            cost: Any = None) -> tuple[Optimizer, SearchContext, BaseModel]:
    """Validate a search without running it: (optimizer, context, settings). Raises a
    UserInputError (unknown method, bad settings, unreachable target, missing data).
    `cost`: the cost model the target is in (a CostModel or "macs"/"params"/"latency:TABLE")."""
    graph = _graph(spec)
    opt = get_optimizer(method)()
    cfg = validate_settings(method, settings, settings_source)
    model = parse_cost(cost)
    model = None if is_default(model) else model  # MACs: the path every committed run took
    if model is not None:
        model.check(graph)
    targets = resolve_targets(graph, target_macs, model)
    if len(targets) > 1 and not opt.multi_target:
        raise ConfigError(f"method '{method}' serves one MACs target per run; give one "
                          f"(methods that serve several: {', '.join(multi_target_methods())})")
    target = targets[0]
    # the smallest network (every group at the divisor) must fit: the same check for all methods
    for t in targets:
        scale_to_macs(graph, {g: float(graph.groups[g].base) for g in graph.free_groups}, t,
                      cost=model)
    if epochs is not None and (isinstance(epochs, bool) or int(epochs) < 1):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    if threads is not None and int(threads) < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    if progress not in ("auto", "rich", "plain", "none"):
        raise ConfigError(f"progress must be auto, rich, plain or none, not {progress!r}")
    if resume and run_dir is None:
        raise ConfigError("resume needs the run directory of the interrupted search (run_dir)")
    if resume and not Path(run_dir).is_dir():  # type: ignore[arg-type]
        raise ConfigError(f"cannot resume: {run_dir} is not a search run directory")
    if opt.needs_data and data is None:
        raise ConfigError(f"method '{method}' trains a network: give data (for example "
                          "data='fashion-mnist' or data={'data': 'synthetic'})")
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    if channels_last not in (True, False, "auto"):
        raise ConfigError(f"channels_last must be true, false or auto, not {channels_last!r}")
    runtime = _runtime(precision, channels_last, device, graph) if opt.needs_data else {}
    ctx = SearchContext(graph=graph, target_macs=target, seed=int(seed),
                        data=_data_config(data, int(seed), fraction) if opt.needs_data else None,
                        epochs=epochs, device=device, threads=threads, progress=progress,
                        init=init, run_dir=Path(run_dir) if run_dir is not None else None,
                        resume=resume, targets=tuple(targets), cost=model, **runtime)
    opt.check(ctx, cfg)
    return opt, ctx, cfg


def has_grouped_conv(graph: StageGraph) -> bool:
    """Whether the network has grouped or depthwise convolutions (kept fp32 by `auto` on
    CPU: see `wtc.trainer.precision`); what `has_grouped_conv(model)` says of its module."""
    for nid in graph.order:
        node = graph.node(nid)
        if node["op"] in ("dwconv", "gconv") or (node["op"] == "conv"
                                                 and node.get("num_groups", 1) > 1):
            return True
    return False


def _runtime(precision: str, channels_last: bool | str, device: str, graph: StageGraph
             ) -> dict[str, Any]:
    """The concrete precision and memory format of a search that trains (`auto` resolved
    for `device`; torch-side, so only for methods that train)."""
    from wtc.trainer import resolve_device, resolve_runtime

    rt = resolve_runtime(precision, channels_last, resolve_device(device),
                         grouped_conv=has_grouped_conv(graph))
    return {"precision": rt.precision, "channels_last": rt.channels_last}


def search_val_top1(details: dict[str, Any]) -> float | None:
    """The search's own held-out top-1, wherever its method records it: MorphNet's chosen λ
    rung (`val_top1`), DMCP's supernet at the end (`dmcp.held_out_top1`), AutoSlim's chosen
    greedy step (`trajectory[trajectory_step]`)."""
    if details.get("val_top1") is not None:
        return details["val_top1"]
    if (details.get("dmcp") or {}).get("held_out_top1") is not None:
        return details["dmcp"]["held_out_top1"]
    step, trajectory = details.get("trajectory_step"), details.get("trajectory") or []
    if step is not None and 0 <= step < len(trajectory):
        return trajectory[step].get("top1")
    return None


def near_chance(top1: float | None, chance: float | None) -> bool:
    """The rule for a search that decided at or near chance: its held-out top-1 is below
    min(3 × chance, (1 + chance) / 2) (30% on 10 classes, 75% on 2)."""
    if top1 is None or chance is None:
        return False
    return top1 < min(3 * chance, (1 + chance) / 2)


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
    if ctx.epochs is not None and "epochs" in settings:
        settings["epochs"] = ctx.epochs
    def wrap(groups: dict[str, int], target: int) -> Widths:
        extra = {} if ctx.cost is None else {
            "cost_model": cost_record(graph, ctx.cost, groups, target)}
        return widths_from_groups(
            graph, groups, target_macs=target if ctx.cost is None else None, method=opt.name,
            settings=settings, seed=ctx.seed, data=data,
            cost={"train_macs": int(outcome.train_macs), "seconds": round(seconds, 3)},
            **({"runtime": ctx.runtime} if ctx.data is not None else {}), **outcome.details,
            **extra)

    per_target = {t: wrap(g, t) for t, g in outcome.per_target.items()}
    widths = per_target.get(ctx.target_macs) or wrap(outcome.groups, ctx.target_macs)
    return SearchResult(widths=widths, method=opt.name, settings=settings,
                        target_macs=ctx.target_macs, train_macs=int(outcome.train_macs),
                        seconds=seconds, history=outcome.history, details=outcome.details,
                        per_target=per_target)


def search(spec: Any, method: str = "morphnet", target_macs: int | float | str | None = None,
           settings: BaseModel | Mapping[str, Any] | None = None, data: Any = None,
           seed: int = 0, *, epochs: int | None = None, fraction: float | None = None,
           init: Callable[[Any], None] | None = None, device: str = "auto",
           threads: int | None = None, progress: str = "none",
           out: str | Path | None = None, run_dir: str | Path | None = None,
           resume: bool = False, precision: str = "auto",
           channels_last: bool | str = "auto", cost: Any = None) -> SearchResult:
    """Find widths for `spec` (StageGraph, Spec or YAML path) at `target_macs` with `method`.

    target_macs: None = the spec's own MACs; "0.5x" = a multiple of them; a number = absolute.
    settings: the method's settings (mapping or its Settings model), validated first.
    data: a dataset name, a mapping of `wtc.data.DataConfig` fields or a DataConfig (methods
    that train need it); `fraction` overrides its share of training images. seed seeds the model
    init, the data subset and the shuffling: the same seed gives the same widths.
    epochs: the training budget (overrides the method's `epochs` setting).
    init(model): called on the freshly built model before training (e.g. to plant BN weights).
    out: also write widths.json there (atomically).
    run_dir: keep training checkpoints there (one folder per round); resume: continue an
    interrupted search from them (a finished round is not trained again).
    precision: auto | fp32 | bf16 | fp16 (auto: bf16 where the hardware runs it natively);
    channels_last: auto | True | False. Both recorded in the provenance.
    cost: the cost model target_macs is counted in ("macs" default, "params",
    "latency:TABLE" or a CostModel); widths.json records it.
    Everything is validated before any training starts.
    """
    opt, ctx, cfg = prepare(spec, method, target_macs, settings, data, seed, epochs=epochs,
                            fraction=fraction, init=init, device=device, threads=threads,
                            progress=progress, run_dir=run_dir, resume=resume,
                            precision=precision, channels_last=channels_last, cost=cost)
    if out is not None and not Path(out).parent.exists():
        from wtc.errors import WidthsError

        raise WidthsError(f"cannot write {out}: folder {Path(out).parent} does not exist")
    result = run_prepared(opt, ctx, cfg)
    if out is not None:
        result.save(out)
    return result
