"""The width-search framework: an optimizer registry, the context a run gets, its result.

An optimizer is a class with a `name`, its own pydantic `Settings` (extra="forbid") and
`run(ctx, settings) -> Outcome`, and declares `estimate_train_macs` and `held_out_top1` (the
dry run and the report call them). Validating and running a search is `request.py`.

No torch here: validating a search and the uniform baseline start instantly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from wtc.errors import ConfigError
from wtc.graph import StageGraph
from wtc.optimizers.targets import resolve_target
from wtc.registry import Registry
from wtc.spec.ops import OPS, Channels
from wtc.widths import Widths, save_widths

if TYPE_CHECKING:
    from wtc.data import DataConfig
    from wtc.graph.costmodel import CostModel

__all__ = [
    "OPTIMIZERS", "NoSettings", "Optimizer", "Outcome", "SearchContext", "SearchResult",
    "get_optimizer", "has_grouped_conv", "near_chance", "register_optimizer", "resolve_target",
    "search_val_top1", "validate_settings",
]


class NoSettings(BaseModel):
    """Settings of an optimizer that has none."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class SearchContext:
    """Everything an optimizer may use; `data` None: the method trains nothing."""

    graph: StageGraph
    target_macs: int
    seed: int = 0
    data: DataConfig | None = None
    device: str = "auto"
    threads: int | None = None
    progress: str = "none"  # "auto" | "rich" | "plain" | "none"
    init: Callable[[Any], None] | None = None  # called on the freshly built model, once
    run_dir: Path | None = None  # checkpoints of the training, so an interrupted run resumes
    resume: bool = False  # continue from the checkpoints in run_dir
    targets: tuple[int, ...] = ()  # every MACs target this run serves (multi-target methods)
    # the cost model targets are counted in (`wtc.graph.costmodel`); None: MACs. With another
    # model, target_macs and targets are in its unit (seconds for latency)
    cost: CostModel | None = None
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
    # target → what differs per target in `details` (AutoSlim: its trajectory step)
    per_target_details: dict[int, dict[str, Any]] = field(default_factory=dict)


class Optimizer:
    """Base of every width optimizer; subclass, set `name` and `Settings`, register."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    needs_data: ClassVar[bool] = False
    multi_target: ClassVar[bool] = False  # one run serves several MACs targets
    shared_run: ClassVar[str] = ""  # what such a run computes once (the report says it)
    # trades MACs against another cost: refused under a MACs budget (by `check` and the plan)
    needs_cost_model: ClassVar[bool] = False
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

    @classmethod
    def estimate_shared_train_macs(cls, graph: StageGraph, settings: Any, *, images: float,
                                   targets: tuple[int, ...], val_images: float = 0.0
                                   ) -> int | None:
        """Projected training MACs of one run serving all of `targets` (`share_targets`). By
        default a run down to the lowest (AutoSlim: its greedy pass passes the others)."""
        return cls.estimate_train_macs(graph, settings, images=images,
                                       target_macs=min(targets), val_images=val_images)

    @staticmethod
    def held_out_top1(details: Mapping[str, Any]) -> float | None:
        """The search's own held-out top-1, read from its `Outcome.details` (what a ledger or
        a widths file records). None: the method measures none."""
        return None

    @staticmethod
    def notes(graph: StageGraph, details: Mapping[str, Any]) -> list[str]:
        """What a user should know of a finished search beyond its widths (plain-text lines,
        from its `Outcome.details`): how it chose, and whether that choice sat at the edge of
        what it tried. None by default."""
        return []

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
    per_target_details: dict[int, dict[str, Any]] = field(default_factory=dict)  # their own

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


def multi_target_methods() -> list[str]:
    return [n for n in OPTIMIZERS.names() if OPTIMIZERS.get(n).multi_target]


def has_grouped_conv(graph: StageGraph) -> bool:
    """Whether the network has grouped or depthwise convolutions (kept fp32 by `auto` on
    CPU: see `wtc.trainer.precision`); what `has_grouped_conv(model)` says of its module."""
    for nid in graph.order[1:]:  # after the input node
        node = graph.node(nid)
        if OPS.get(node["op"]).channels is Channels.GROUPED or (
                node["op"] == "conv" and node.get("num_groups", 1) > 1):
            return True
    return False


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
