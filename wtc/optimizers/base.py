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
from wtc.graph import SpecLike, StageGraph, as_graph, count_macs
from wtc.registry import Registry
from wtc.widths import (
    MacsTarget,
    Widths,
    parse_targets,
    resolve_macs,
    save_widths,
    scale_to_macs,
    widths_from_groups,
)

__all__ = [
    "OPTIMIZERS", "NoSettings", "Optimizer", "Outcome", "SearchContext", "SearchRequest",
    "SearchResult", "get_optimizer", "register_optimizer", "resolve_target", "search",
    "validate_settings",
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
    device: str = "auto"
    threads: int | None = None
    progress: str = "none"  # "auto" | "rich" | "plain" | "none"
    init: Callable[[Any], None] | None = None  # called on the freshly built model, once
    run_dir: Path | None = None  # checkpoints of the training, so an interrupted run resumes
    resume: bool = False  # continue from the checkpoints in run_dir
    targets: tuple[int, ...] = ()  # every MACs target this run serves (multi-target methods)
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

    @staticmethod
    def estimate_train_macs(graph: StageGraph, settings: Any, *, images: float,
                            target_macs: int, val_images: float = 0.0) -> int | None:
        """Projected training MACs of one search, for dry runs (no data is read). None: the
        method has no estimate, and the dry run counts one training at the base widths for
        the method's `epochs` (a lower bound)."""
        return None

    @staticmethod
    def held_out_top1(details: Mapping[str, Any]) -> float | None:
        """The search's own held-out top-1, read from its `Outcome.details` (what a ledger or
        a widths file records). None: the method measures none."""
        return None

    @classmethod
    def has_estimate(cls) -> bool:
        """Whether the method projects its own search cost (see `estimate_train_macs`)."""
        return cls.estimate_train_macs is not Optimizer.estimate_train_macs


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
        """The search's own top-1 of its widths on its held-out split (None: not measured),
        as its method's declared `Optimizer.held_out_top1` reads it from the details."""
        return search_val_top1(self.method, self.details)

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


def resolve_target(graph: StageGraph, target: MacsTarget | int | float | str | None) -> int:
    """MACs target as an int: None is the spec's own MACs, "0.5x" a multiple of them, a number
    (or "41M", "4.1e7") is absolute (`wtc.widths.MacsTarget`, the one parser)."""
    return resolve_macs(graph, target)


def resolve_targets(graph: StageGraph, target: Any) -> list[int]:
    """One or several MACs targets (a list, or a comma-separated string "0.25x,0.5x"), each
    resolved against the graph's MACs. Order kept, duplicates dropped."""
    if target is None:
        return [count_macs(graph)]
    base = count_macs(graph)
    return list(dict.fromkeys(t.macs(base) for t in parse_targets(target)))


def multi_target_methods() -> list[str]:
    return [n for n in OPTIMIZERS.names() if OPTIMIZERS.get(n).multi_target]


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
    targets = resolve_targets(graph, r.target_macs)
    if len(targets) > 1 and not opt.multi_target:
        raise ConfigError(f"method '{r.method}' serves one MACs target per run; give one "
                          f"(methods that serve several: {', '.join(multi_target_methods())})")
    # the smallest network (every group at the divisor) must fit: the same check for all methods
    for t in targets:
        scale_to_macs(graph, {g: float(graph.groups[g].base) for g in graph.free_groups}, t)
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
                        resume=r.resume, targets=tuple(targets), **runtime)
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


def search_val_top1(method: str, details: Mapping[str, Any]) -> float | None:
    """A search's own held-out top-1, read by its method's declared `Optimizer.held_out_top1`
    from the details it recorded (a ledger's, a widths file's); None for a method that is not
    registered, or measures none."""
    return OPTIMIZERS.get(method).held_out_top1(details) if method in OPTIMIZERS else None


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

    def wrap(groups: dict[str, int], target: int) -> Widths:
        return widths_from_groups(
            graph, groups, target_macs=target, method=opt.name, settings=settings,
            seed=ctx.seed, data=data,
            cost={"train_macs": int(outcome.train_macs), "seconds": round(seconds, 3)},
            **({"runtime": ctx.runtime} if ctx.data is not None else {}), **outcome.details)

    per_target = {t: wrap(g, t) for t, g in outcome.per_target.items()}
    widths = per_target.get(ctx.target_macs) or wrap(outcome.groups, ctx.target_macs)
    return SearchResult(widths=widths, method=opt.name, settings=settings,
                        target_macs=ctx.target_macs, train_macs=int(outcome.train_macs),
                        seconds=seconds, history=outcome.history, details=outcome.details,
                        per_target=per_target)


def search(spec: SpecLike, method: str = "morphnet", target_macs: Any = None,
           settings: BaseModel | Mapping[str, Any] | None = None, data: Any = None,
           seed: int = 0, *, out: str | Path | None = None, **options: Any) -> SearchResult:
    """Find widths for `spec` (StageGraph, Spec or YAML path) at `target_macs` with `method`.

    The arguments, and `options` (epochs, fraction, init, device, threads, progress, run_dir,
    resume, precision, channels_last), are the fields of `SearchRequest`, which says what each
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
