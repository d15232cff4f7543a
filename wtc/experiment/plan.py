"""The experiment plan: a YAML file validated by pydantic, then resolved against specs and the
optimizer registry, so that every bad key fails before any unit runs.

    name: width_transfer_fmnist
    target: {spec: ../specs/resnet20_fmnist.yaml, macs: 0.5x}   # paths relative to the plan
    data: {data: fashion-mnist, batch_size: 128}                # wtc.data.DataConfig keys
    methods:                                                     # any registered optimizer
      morphnet: {epochs: 2, ladder: 3}                           # its settings (the budget)
    proxies:                                                     # named projections
      half_width_14px: {width: 0.5, resolution: 14}
      one_block: {depths: [1, 1, 1]}                             # depth proxy: stacking rules
      data10: {fraction: 0.1}
    stacking: [last, average]                                    # rules for depth proxies
    search: {seed: 0, fraction: 1.0, val_split: 0.1}             # held-out split of TRAIN
    train: {epochs: 10, lr: 0.1}                                 # final recipe (TrainConfig)
    seeds: [0, 1, 2]
    precision: auto              # of every unit that trains or evaluates: auto|fp32|bf16|fp16
    channels_last: auto          # auto | true | false

Uniform widths at the target MACs are always included as the baseline. A proxy's `fraction`
multiplies the search fraction; `classes: k` keeps the first k classes (spec and data);
`search_epochs: k` multiplies every method's `epochs` on that proxy (a proxy hundreds of times
cheaper than the target can afford a longer search); `batch_scale: k` trains its searches on
batches k times larger at k times the learning rate (tiny proxies run more MACs per second on
larger batches; held-out scoring keeps its batch size). A multi-target method's
`share_targets: [0.25x, 0.1x]` runs one search for all those budgets (`plan_share`).

`precision`/`channels_last` are inputs of every unit that trains (`auto` is resolved per
machine by the worker, which records what it used on the unit's ledger line).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, field_validator

from wtc.errors import PlanError, UserInputError
from wtc.experiment.plan_cost import fits, macs_at, plan_dump, read_plan_cost, target_macs_of
from wtc.experiment.plan_fields import Name, Seed, Strict, Title, image_counts
from wtc.experiment.plan_sections import CurveSection, ProxySection, SearchSection, TargetSection
from wtc.experiment.plan_share import Shared, resolve_shared, without_share
from wtc.experiment.source import LEGACY_RUNTIME, Source, legacy_free
from wtc.graph import compile_spec, count_macs
from wtc.spec import Spec, load_spec
from wtc.widthtransfer import STACKING, project_spec

if TYPE_CHECKING:
    from wtc.data import DataConfig
    from wtc.graph.costmodel import CostModel
    from wtc.trainer import TrainConfig

# keys of plan.data the plan itself owns (searches, proxies and the final recipe set them)
_DATA_OWNED = ("fraction", "val_split", "classes", "resolution", "seed")
# keys of plan.train that are not part of the recipe (runtime options come from the command)
_TRAIN_FORBIDDEN = ("data", "data_root", "seed", "out", "val_split", "device", "threads",
                    "classes", "resolution")
# training-set sizes of the built-in datasets, for the dry-run's projected MACs
KNOWN_TRAIN_IMAGES = {"fashion-mnist": 60_000, "cifar10": 50_000}
KNOWN_TEST_IMAGES = {"fashion-mnist": 10_000, "cifar10": 10_000}


class PlanModel(Strict):
    name: Title = Field("experiment", min_length=1)
    target: TargetSection
    data: dict[str, Any]
    methods: dict[Name, dict[str, Any] | None] = Field(default_factory=dict)
    proxies: dict[Name, ProxySection] = Field(default_factory=dict)
    stacking: list[str] = Field(default_factory=lambda: ["last", "average"])
    search: SearchSection = Field(default_factory=SearchSection)
    train: dict[str, Any] = Field(default_factory=dict)
    seeds: list[Seed] = Field(min_length=1, description="seeds of the final trainings")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="precision of every unit that trains or evaluates")
    channels_last: bool | Literal["auto"] = Field("auto", description="NHWC tensors")
    curve: CurveSection | None = Field(None, description="a search-length curve")

    @field_validator("methods", mode="before")
    @classmethod
    def _list_of_names(cls, v: Any) -> Any:
        if isinstance(v, list):  # [morphnet, autoslim] = default settings
            return {str(name): None for name in v}
        return v

    @field_validator("seeds")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds repeat: {v}")
        return v


@dataclass(frozen=True)
class Plan:
    """A validated plan: the raw model plus everything resolved from it. The data and the
    final recipe are parsed here, once, into typed configs; units record them as given
    (`as_given`), and workers validate that once."""

    model: PlanModel
    file: str | None
    target: Source
    proxies: dict[str, Source]
    methods: dict[str, dict[str, Any]]  # validated settings (json) of every non-uniform method
    target_macs: int
    base_macs: int
    train: TrainConfig  # the final recipe, its data included
    eval_data: DataConfig  # the test-set evaluation's data
    train_images: int | None  # training-set size (dry-run projections); None: unknown
    test_images: int | None
    # a non-MACs cost model (`experiment.plan_cost`); target_macs is in its unit
    cost: CostModel | None = None
    cost_macs: int | None = None  # then: MACs of the uniform widths at it (dry-run projections)
    # `share_targets` (`experiment.plan_share`): method → source → targets its one search serves
    shared: Shared = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def seeds(self) -> list[int]:
        return list(self.model.seeds)

    @property
    def sources(self) -> list[Source]:
        return [self.target, *self.proxies.values()]

    @property
    def runtime(self) -> dict[str, Any]:
        """The requested precision and memory format, as unit parameters: empty for fp32 NCHW
        (what every unit ran in before these settings existed: their hashes stay valid)."""
        return legacy_free({"precision": self.model.precision,
                            "channels_last": self.model.channels_last})

    def hash(self) -> str:
        dump = plan_dump(self.model)
        for k in LEGACY_RUNTIME:
            dump.pop(k)
        # keys added later, left out at their "absent" values so older plans keep their hash
        if not dump["search"]["val_min_per_class"]:
            dump["search"].pop("val_min_per_class")
        for proxy in dump["proxies"].values():
            if proxy.get("batch_scale") is None:
                proxy.pop("batch_scale", None)
        if dump.get("curve") is None:
            dump.pop("curve", None)
        return digest({**dump, **self.runtime})


def digest(obj: Any) -> str:
    """Content hash of a JSON-able object (canonical: sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading


def load_plan(path: str | Path) -> Plan:
    """Read and resolve a plan file (spec paths are relative to the plan's folder). YAML is
    read bounded (wtc.safe_yaml); errors name the file, the line and the key."""
    from wtc.limits import read_limited_text
    from wtc.safe_yaml import load_yaml

    p = Path(path)
    try:
        data, lines = load_yaml(read_limited_text(p, "the plan"))
    except FileNotFoundError:
        raise PlanError("no such plan file", file=str(p)) from None
    except UserInputError as e:
        line = getattr(e, "line", None)
        raise PlanError(str(e), file=f"{p}:{line}" if line else str(p)) from None
    if not isinstance(data, dict):
        raise PlanError("a plan is a YAML mapping (target, data, methods, proxies, train, "
                        "seeds, ...)", file=str(p))
    try:
        return resolve_plan(data, base_dir=p.resolve().parent, file=str(p))
    except PlanError as e:
        line = _line(lines, e.key)
        if line is None:
            raise
        raise PlanError(e.reason, key=e.key, file=f"{p}:{line}") from None


def _line(lines: dict[str, int], key: str | None) -> int | None:
    """The line of a key path (or of its nearest parent)."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None


def resolve_plan(data: Mapping[str, Any] | PlanModel, *, base_dir: str | Path | None = None,
                 file: str | None = None) -> Plan:
    """Validate a plan mapping and resolve it: specs loaded and projected, methods looked up
    in the search registry, settings validated, MACs targets checked. Raises PlanError naming
    the key at fault; nothing runs."""
    model = data if isinstance(data, PlanModel) else _validate(data, file)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    spec = _load_target(model.target.spec, base, file)
    graph = compile_spec(spec)
    base_macs = count_macs(graph)
    cost = read_plan_cost(model.target.cost, base, graph, file)
    target_macs = target_macs_of(graph, model.target.macs, file, cost)
    cost_macs = None if cost is None else macs_at(graph, target_macs, cost)
    share = (target_macs if cost_macs is None else cost_macs) / base_macs
    methods = _methods(model, file)
    eval_data, search_data, train_images, test_images = _data(model, file)
    rules = _rules(model.stacking, "stacking", file)

    target = Source("target", spec, graph, target_macs,
                    _source_data({**search_data, "fraction": model.search.fraction},
                                 "target", file))
    proxies = {}
    for name, proxy in model.proxies.items():
        proxies[name] = _proxy(name, proxy, spec, share, search_data, model, rules, file)
    train = _recipe(model, file)
    shared = resolve_shared(model.methods, target, proxies, cost, file)
    if model.curve is not None:
        bad = [s for s in model.curve.sources if s != "target" and s not in proxies]
        if bad:
            raise PlanError(f"'{bad[0]}' is neither target nor a proxy of this plan",
                            key="curve.sources", file=file)
    return Plan(model=model, file=file, target=target, proxies=proxies, methods=methods,
                target_macs=target_macs, base_macs=base_macs, train=train, eval_data=eval_data,
                train_images=train_images, test_images=test_images, cost=cost,
                cost_macs=cost_macs, shared=shared)


def _validate(data: Mapping[str, Any], file: str | None) -> PlanModel:
    try:
        return PlanModel.model_validate(dict(data))
    except ValidationError as e:
        er = e.errors()[0]
        key = ".".join(str(x) for x in er["loc"]) or "plan"
        msg = "unknown key" if er["type"] == "extra_forbidden" else er["msg"]
        if er["type"] == "missing":
            msg = "required key missing"
        more = f" (and {len(e.errors()) - 1} more problem(s))" if len(e.errors()) > 1 else ""
        raise PlanError(f"{msg}{more}", key=key, file=file) from None


def _load_target(path: str, base: Path, file: str | None) -> Spec:
    for candidate in (base / path, Path(path)):
        if candidate.is_file():
            try:
                return load_spec(candidate)
            except UserInputError as e:
                raise PlanError(f"the target spec does not load: {e}", key="target.spec",
                                file=file) from None
    raise PlanError(f"no spec file '{path}' (looked relative to {base} and to the working "
                    "folder)", key="target.spec", file=file)


def _methods(model: PlanModel, file: str | None) -> dict[str, dict[str, Any]]:
    from wtc.optimizers import OPTIMIZERS, validate_settings

    out: dict[str, dict[str, Any]] = {}
    for name, settings in model.methods.items():
        key = f"methods.{name}"
        if name not in OPTIMIZERS:
            raise PlanError(f"unknown search method '{name}'; registered methods: "
                            f"{', '.join(OPTIMIZERS.names())}", key=key, file=file)
        if name == "uniform":  # always included, never searched
            continue
        try:
            out[name] = validate_settings(name, without_share(settings)).model_dump(mode="json")
        except UserInputError as e:
            raise PlanError(str(e), key=key, file=file) from None
    return out


def _data(model: PlanModel, file: str | None
          ) -> tuple[DataConfig, dict[str, Any], int | None, int | None]:
    """The data section parsed (the test-set evaluation's data), the values every search's
    data starts from, and the dry-run image counts."""
    data = dict(model.data)
    owned = [k for k in data if k in _DATA_OWNED]
    if owned:
        raise PlanError(f"'{owned[0]}' is set by the plan (search.fraction, search.val_split, "
                        "proxies, seeds), not under data", key=f"data.{owned[0]}", file=file)
    train_images, test_images = image_counts(data, file)
    from wtc.data import DataConfig

    try:
        parsed = DataConfig(**data)
    except ValidationError as e:
        er = e.errors()[0]
        key = ".".join(str(x) for x in ("data", *er["loc"]))
        msg = "unknown key" if er["type"] == "extra_forbidden" else er["msg"]
        raise PlanError(msg, key=key, file=file) from None
    name = parsed.data
    if name == "synthetic":
        train_images = train_images or parsed.synthetic_size
        test_images = test_images or parsed.synthetic_test_size
    train_images = train_images or KNOWN_TRAIN_IMAGES.get(name)
    test_images = test_images or KNOWN_TEST_IMAGES.get(name)
    search = {**data, "val_split": model.search.val_split}
    if model.search.val_min_per_class:
        search["val_min_per_class"] = model.search.val_min_per_class
    return parsed, search, train_images, test_images


def _source_data(values: dict[str, Any], key: str, file: str | None) -> DataConfig:
    """The data of a source's searches, parsed once (a proxy's `batch_scale` can push the
    batch over its bound: a PlanError naming the source)."""
    from wtc.data import DataConfig

    try:
        return DataConfig(**values)
    except ValidationError as e:
        er = e.errors()[0]
        raise PlanError(f"its searches' data {'.'.join(map(str, er['loc']))}: {er['msg']}",
                        key=key, file=file) from None


def _rules(rules: list[str], key: str, file: str | None) -> tuple[str, ...]:
    if not rules:
        raise PlanError("give at least one stacking rule", key=key, file=file)
    bad = [r for r in rules if r not in STACKING]
    if bad:
        raise PlanError(f"unknown stacking rule '{bad[0]}'; choose from {', '.join(STACKING)}",
                        key=key, file=file)
    return tuple(dict.fromkeys(rules))


def _proxy(name: str, proxy: ProxySection, spec: Spec, share: float,
           search_data: dict[str, Any], model: PlanModel, rules: tuple[str, ...],
           file: str | None) -> Source:
    key = f"proxies.{name}"
    if name == "target" or "/" in name:
        raise PlanError("a proxy cannot be called 'target' or contain '/'", key=key, file=file)
    try:
        pspec = project_spec(spec, width=proxy.width, depth=proxy.depth, depths=proxy.depths,
                             resolution=proxy.resolution, classes=proxy.classes,
                             name=f"{spec.name}_{name}")
        pgraph = compile_spec(pspec)
        ptarget = max(1, round(share * count_macs(pgraph)))
        fits(pgraph, ptarget)
    except UserInputError as e:
        raise PlanError(f"cannot build this proxy: {e}", key=key, file=file) from None
    if proxy.classes is not None and proxy.classes > spec.classes:
        raise PlanError(f"classes {proxy.classes} exceeds the target's {spec.classes}",
                        key=f"{key}.classes", file=file)
    data = {**search_data, "fraction": model.search.fraction * (proxy.fraction or 1.0)}
    if proxy.classes is not None:
        data["classes"] = list(range(proxy.classes))
    if proxy.batch_scale and proxy.batch_scale > 1:
        batch = int(data.get("batch_size", 128))
        data["batch_size"] = batch * proxy.batch_scale
        data.setdefault("eval_batch_size", max(batch, 256))  # held-out scoring as before
    deeper = [s.depth for s in pspec.stages] != [s.depth for s in spec.stages]
    own = _rules(proxy.stacking, f"{key}.stacking", file) if proxy.stacking else rules
    return Source(name, pspec, pgraph, ptarget, _source_data(data, key, file),
                  proxy.projection(),
                  own if deeper else ("last",), proxy.search_epochs or 1.0,
                  float(proxy.batch_scale or 1))


def _recipe(model: PlanModel, file: str | None) -> TrainConfig:
    """The final recipe: the data section with `train` on top, parsed once."""
    bad = [k for k in model.train if k in _TRAIN_FORBIDDEN]
    if bad:
        raise PlanError(f"'{bad[0]}' is not part of the training recipe (data goes under "
                        "data, seeds under seeds, device and threads are options of the "
                        "command)", key=f"train.{bad[0]}", file=file)
    data = {k: v for k, v in model.data.items() if k not in ("train_images", "test_images")}
    from wtc.trainer import TrainConfig
    from wtc.trainer.config import flat_loc

    try:
        return TrainConfig(**{**data, **model.train})  # train keys over data keys
    except ValidationError as e:
        er = e.errors()[0]
        key = ".".join(str(x) for x in ("train", *flat_loc(er["loc"])))
        msg = "unknown key" if er["type"] == "extra_forbidden" else er["msg"]
        raise PlanError(msg, key=key, file=file) from None
