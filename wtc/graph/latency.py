"""Latency tables (`wtc profile`'s output, "wtc.latency/1") and the cost model that reads them.

A table holds, for every distinct layer configuration of a spec (op and everything but the
channel counts that decides its time: kernel, stride, padding, dilation, groups, input size,
activation), its measured median latency over a grid of channel counts on the groups' steps,
with the spread. Between grid points the latency is interpolated (linearly per axis: bilinear
for (in, out) layers), exact on grid points and monotone between them (the profiler stores
medians made monotone along each axis: more channels never cost less); beyond the grid it is
extrapolated from the last segment. A network's latency is `overhead + scale · Σ nodes`: the
sum over its timed nodes, times a per-network factor, plus a constant per-network overhead, both
fitted by the profiler on whole networks (framework dispatch between layers, what runs outside
the timed modules, a layer timed alone running warmer than inside the network).

The table records the machine, runtime, threads, batch and versions; using it on another
machine is allowed but warned about, a table that lacks one of a graph's layers is refused.
No torch here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtc.errors import ConfigError
from wtc.graph.compile import StageGraph
from wtc.graph.cost import channels
from wtc.graph.costmodel import CostModel, Groups
from wtc.limits import LimitError, read_limited_text

FORMAT = "wtc.latency/1"
RUNTIMES = ("torch-cpu", "onnxruntime-cpu", "cuda")
MAX_TABLE_BYTES = 64 * 2**20
# ops that run as nothing at inference (or as a view): no entry, their time is overhead
UNTIMED = frozenset({"identity", "dropout", "droppath", "flatten"})
_KEY_FIELDS = ("kernel", "stride", "padding", "dilation", "num_groups", "group_width", "bias",
               "fn", "chunks", "chunk")
_DESCRIBE = {"in_hw": "at {}", "kernel": "{}x{}", "stride": "stride {}", "num_groups": "groups {}",
             "group_width": "group width {}", "fn": "{}"}


def layer_key(graph: StageGraph, node: str) -> str:
    """The configuration of a node that decides its time, channels aside, as a stable string."""
    a = graph.nx.nodes[node]
    key: dict[str, Any] = {"op": a["op"], "in_hw": list(a["in_hw"]) if a["in_hw"] else None}
    key.update({f: a[f] for f in _KEY_FIELDS if f in a})
    if len(a["inputs"]) > 1:  # add, mul, concat: how many inputs, of which sizes
        key["inputs"] = [list(graph.nx.nodes[i]["out_hw"] or ()) for i in a["inputs"]]
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def layer_axes(graph: StageGraph, node: str) -> tuple[tuple[str, ...], ...]:
    """The groups summed into each channel axis of a node's table entry: (in, out) for conv and
    linear, one axis otherwise (the output channels of a concat, the input channels else)."""
    a = graph.nx.nodes[node]
    if a["op"] in ("conv", "linear"):
        return (tuple(a["in_groups"]), tuple(a["groups"]))
    return (tuple(a["groups"]) if a["op"] == "concat" else tuple(a["in_groups"]),)


# runtimes that fold a batch norm into the convolution before it, and fuse these activations
# into it (onnxruntime's graph optimizations: Conv+BatchNormalization, Conv+Relu/Clip)
FUSING = {"onnxruntime-cpu": frozenset({"relu", "relu6"})}
_CONVS = frozenset({"conv", "gconv", "dwconv"})


def timed_nodes(graph: StageGraph, runtime: str | None = None) -> list[str]:
    """The nodes a table prices: every op that runs (not identity, dropout, flatten), less
    those `runtime` fuses into the convolution before them (`FUSING`)."""
    fused = _fused(graph, FUSING[runtime]) if runtime in FUSING else set()
    return [n for n in graph.order[1:]
            if graph.nx.nodes[n]["op"] not in UNTIMED and n not in fused]


def _fused(graph: StageGraph, acts: frozenset[str]) -> set[str]:
    """bn right after a conv (its only consumer), and an activation in `acts` right after such
    a conv or bn: the nodes a fusing runtime runs inside the convolution."""
    out: set[str] = set()
    for n in graph.order[1:]:
        a = graph.nx.nodes[n]
        src = a["inputs"][0] if a["inputs"] else None
        if src is None or graph.nx.out_degree(src) != 1:
            continue
        before = graph.nx.nodes[src]["op"]
        folded_bn = a["op"] == "bn" and before in _CONVS
        fused_act = a["op"] == "act" and a.get("fn") in acts and (before in _CONVS or src in out)
        if folded_bn or fused_act:
            out.add(n)
    return out


def describe_key(key: str) -> str:
    """'conv 3x3 stride 2 at 32x32' for an error message."""
    k = json.loads(key)
    parts = [k["op"]]
    for f, form in _DESCRIBE.items():
        v = k.get(f)
        if v is None or (f == "num_groups" and v == 1) or (f == "stride" and v == 1):
            continue
        parts.append(form.format(*(v if f == "in_hw" else (v, v) if f == "kernel" else (v,)))
                     .replace("[", "").replace("]", "").replace(", ", "x"))
    return " ".join(parts)


def machine_info() -> dict[str, Any]:
    """What identifies this machine in a table (compared, never trusted for anything else)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count() or 0,
            "system": platform.system()}


@dataclass(frozen=True)
class Entry:
    """One layer configuration: its grid per axis and the median/spread on the grid."""

    key: str
    grid: tuple[tuple[int, ...], ...]
    median: Any  # nested lists, one level per axis, seconds
    spread: Any

    def at(self, point: Sequence[float]) -> float:
        return _interp(self.grid, self.median, point)


def _interp(grid: Sequence[Sequence[int]], values: Any, point: Sequence[float]) -> float:
    """Multilinear interpolation: exact on grid points, linear between, the last segment's slope
    beyond the grid (never below 0); an axis with one point scales in proportion."""
    xs, x = grid[0], float(point[0])

    def rest(v: Any) -> float:
        return float(v) if len(grid) == 1 else _interp(grid[1:], v, point[1:])

    if len(xs) == 1:
        return rest(values[0]) * x / xs[0]
    if x in xs:
        return rest(values[xs.index(x)])
    i = 0
    while i < len(xs) - 2 and x > xs[i + 1]:
        i += 1
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    lo, hi = rest(values[i]), rest(values[i + 1])
    return max(0.0, lo + t * (hi - lo))


@dataclass(frozen=True)
class LatencyTable:
    """A parsed, validated latency table."""

    source: str
    sha256: str
    spec_name: str
    spec_hash: str
    runtime: str
    threads: int
    batch: int
    machine: dict[str, Any]
    versions: dict[str, Any]
    overhead: float
    scale: float
    entries: dict[str, Entry]
    raw: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.raw


def load_table(path: str | Path) -> LatencyTable:
    """Read and validate a table; a ConfigError says where and what is wrong."""
    p = Path(path)
    try:
        text = read_limited_text(p, "latency table", MAX_TABLE_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such latency table (make one with `wtc profile SPEC -o "
                          f"{p.name}`)") from None
    except LimitError as e:
        raise ConfigError(f"{p}: {e}") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as e:
        raise ConfigError(f"{p}: not a latency table (not valid JSON: {e})") from None
    return table_from_json(data, str(p), hashlib.sha256(text.encode()).hexdigest())


STATISTICS = ("median", "min")


def table_from_json(data: Any, source: str = "table", sha: str = "",
                    statistic: str | None = None) -> LatencyTable:
    """A validated table. It prices with its own `statistic` ("median" of the repeated samples,
    the default, or "min": the best sample, steadier on a loaded machine); `statistic` reads
    the other one instead (its grid values and its per-network fit, `fits`)."""
    def bad(what: str) -> ConfigError:
        return ConfigError(f"{source}: {what}")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise bad(f"not a latency table (expected \"format\": \"{FORMAT}\", found {found!r}; "
                  "make one with `wtc profile`)")
    spec, runtime = data.get("spec"), data.get("runtime")
    if not isinstance(spec, dict) or not isinstance(spec.get("hash"), str):
        raise bad("needs a 'spec' object with the name and hash it was profiled for")
    if runtime not in RUNTIMES:
        raise bad(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    for field in ("threads", "batch"):
        v = data.get(field)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(f"'{field}' must be a positive integer, got {v!r}")
    stat = statistic or data.get("statistic", "median")
    if stat not in STATISTICS:
        raise bad(f"unknown statistic {stat!r}; one of {', '.join(STATISTICS)}")
    fit = (data.get("fits") or {}).get(stat) if statistic else None
    fit = fit if isinstance(fit, dict) else data
    overhead, scale = fit.get("overhead_s", 0.0), fit.get("scale", 1.0)
    if not _finite(overhead):
        raise bad(f"'overhead_s' must be a finite number of seconds, got {overhead!r}")
    if not _finite(scale) or scale <= 0:
        raise bad(f"'scale' must be a positive number, got {scale!r}")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise bad("needs a non-empty 'layers' list")
    entries = {}
    for i, layer in enumerate(layers):
        entry = _entry(layer, f"{source}: layers[{i}]", stat)
        if entry.key in entries:
            raise bad(f"layers[{i}]: the layer configuration {describe_key(entry.key)} twice")
        entries[entry.key] = entry
    return LatencyTable(source=source, sha256=sha, spec_name=str(spec.get("name")),
                        spec_hash=spec["hash"], runtime=runtime, threads=data["threads"],
                        batch=data["batch"], machine=dict(data.get("machine") or {}),
                        versions=dict(data.get("versions") or {}), overhead=float(overhead),
                        scale=float(scale),
                        entries=entries, raw=data)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _entry(layer: Any, where: str, stat: str = "median") -> Entry:
    if not isinstance(layer, dict) or not isinstance(layer.get("key"), str):
        raise ConfigError(f"{where}: needs a 'key' string, a 'grid' and a '{stat}'")
    if stat not in layer:
        raise ConfigError(f"{where}: has no '{stat}' values (the table prices with them)")
    try:
        json.loads(layer["key"])
    except ValueError:
        raise ConfigError(f"{where}: the key is not a layer configuration") from None
    grid = layer.get("grid")
    if (not isinstance(grid, list) or not 1 <= len(grid) <= 2 or not all(
            isinstance(ax, list) and ax and all(isinstance(c, int) and not isinstance(c, bool)
                                                and c > 0 for c in ax)
            and all(a < b for a, b in itertools.pairwise(ax)) for ax in grid)):
        raise ConfigError(f"{where}: 'grid' must be one or two ascending lists of positive "
                          "channel counts")
    for name in (stat, "spread"):
        _check_shape(layer.get(name, layer[stat]), [len(ax) for ax in grid],
                     f"{where}: '{name}'")
    return Entry(layer["key"], tuple(tuple(ax) for ax in grid), layer[stat],
                 layer.get("spread"))


def _check_shape(values: Any, shape: list[int], where: str) -> None:
    if not isinstance(values, list) or len(values) != shape[0]:
        raise ConfigError(f"{where} must have {shape[0]} values along this axis (the grid's)")
    for v in values:
        if len(shape) > 1:
            _check_shape(v, shape[1:], where)
        elif not _finite(v) or v < 0:
            raise ConfigError(f"{where} holds {v!r}; latencies are non-negative seconds")


class LatencyCost(CostModel):
    """Predicted latency (seconds) of one forward pass from a table: overhead + scale · Σ nodes
    (`node_costs` are the scaled per-node shares, so they and the overhead sum to `cost`)."""

    name = "latency"
    unit = "s"
    integral = False

    def __init__(self, table: LatencyTable, path: str = "", runtime: str | None = None) -> None:
        self.table = table
        self.path = path or table.source
        if runtime is not None and runtime != table.runtime:
            raise ConfigError(f"latency table {self.path} was measured on runtime "
                              f"'{table.runtime}', not '{runtime}': profile for it with "
                              f"`wtc profile SPEC --runtime {runtime}`")

    @classmethod
    def from_arg(cls, arg: str) -> LatencyCost:
        """`TABLE` or `TABLE@RUNTIME` (refused when the table is for another runtime)."""
        path, _, runtime = arg.rpartition("@") if "@" in arg else (arg, "", "")
        if runtime and runtime not in RUNTIMES:
            raise ConfigError(f"unknown runtime '{runtime}' in latency:{arg}; one of "
                              f"{', '.join(RUNTIMES)}")
        return cls(load_table(path), path, runtime or None)

    def label(self) -> str:
        return f"latency:{self.path}"

    def _plan(self, graph: StageGraph) -> list[tuple[str, Entry, tuple[tuple[str, ...], ...]]]:
        def make() -> list[tuple[str, Entry, tuple[tuple[str, ...], ...]]]:
            self.check(graph)
            return [(n, self.table.entries[layer_key(graph, n)], layer_axes(graph, n))
                    for n in timed_nodes(graph, self.table.runtime)]

        return graph.derived(f"latency-plan:{self.table.sha256 or id(self.table)}", make)

    def check(self, graph: StageGraph) -> None:
        missing = [n for n in timed_nodes(graph, self.table.runtime)
                   if layer_key(graph, n) not in self.table.entries]
        if missing:
            shown = ", ".join(f"'{n}' ({describe_key(layer_key(graph, n))})" for n in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise ConfigError(
                f"latency table {self.path} (profiled for spec '{self.table.spec_name}') has "
                f"no entry for {len(missing)} layer(s) of '{graph.spec.name}': {shown}{more}; "
                f"make a table for this spec with `wtc profile`")

    def node_costs(self, graph: StageGraph, widths: Groups = None) -> dict[str, float]:
        c = channels(graph, widths)
        k = self.table.scale
        return {n: k * entry.at([sum(c[g] for g in ax) for ax in axes])
                for n, entry, axes in self._plan(graph)}

    def cost(self, graph: StageGraph, widths: Groups = None) -> float:
        c = channels(graph, widths)
        layers = sum(entry.at([sum(c[g] for g in ax) for ax in axes])
                     for _, entry, axes in self._plan(graph))
        return self.table.overhead + self.table.scale * layers

    def warnings(self) -> list[str]:
        here, there = machine_info(), self.table.machine
        differ = [k for k in ("host", "cpu", "cores") if there.get(k) != here.get(k)]
        if not differ:
            return []
        return [f"latency table {self.path} was measured on another machine ("
                + ", ".join(f"{k} {there.get(k)!r} there, {here.get(k)!r} here" for k in differ)
                + "): its latencies may not hold here"]

    def describe(self) -> dict[str, Any]:
        t = self.table
        return {"name": "latency", "unit": "s", "table": self.path, "table_sha256": t.sha256,
                "runtime": t.runtime, "threads": t.threads, "batch": t.batch,
                "table_spec": t.spec_name, "machine": t.machine.get("host")}

    def format(self, value: float) -> str:
        return f"{value * 1e3:.3f} ms"


def fit_network(layer_sums: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """(overhead, scale) with measured ≈ overhead + scale · layer sum, fitted robustly over a few
    whole networks: the scale is the median slope over pairs (Theil–Sen), kept in [0.5, 4]; the
    overhead the median residual. One network (or equal sums): scale 1, the median gap."""
    pairs = [(m2 - m1) / (s2 - s1) for i, (s1, m1) in enumerate(zip(layer_sums, measured,
                                                                      strict=True))
             for s2, m2 in list(zip(layer_sums, measured, strict=True))[i + 1:]
             if abs(s2 - s1) > 1e-12]
    scale = min(4.0, max(0.5, _median(pairs))) if pairs else 1.0
    return _median([m - scale * s for s, m in zip(layer_sums, measured, strict=True)]), scale


def _median(values: Sequence[float]) -> float:
    v = sorted(values)
    if not v:
        return 0.0
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2
