"""The slimmable supernet: one network at maximum widths that runs at any widths respecting the
width groups, by slicing leading channels. AutoSlim and DMCP train and search on it; nothing
about either optimizer lives here.

Every member of a width group uses the same leading channels of its weights, so a residual
stream, a depthwise pair or an SE gate stay consistent at any widths. A concat's output holds
its parts at their offsets in the max layout, so a consumer of a concat selects the active
channels of each part (an index, not a prefix). Setting widths only recomputes these
selections: no parameter is reallocated.

A channel shuffle followed by a split (ShuffleNetV2) is exact at every widths too, but not
nested: the shuffle interleaves the active channels of both halves, so the chunk a split takes
holds other producer channels at other widths (at stream half-width k, column 0 of chunk 1 is
channel k/2 of the left half; for odd k it comes from the other half). A weight after such a
split sees different features at different widths, so the widths of these streams share
their weights less well than those of a residual stream do.

BN: no per-width statistics are stored. Running statistics seen during supernet training are a
mix of widths; `recalibrate_bn` (wtc.nn.bn) at the widths to evaluate resets and re-estimates
them on a few training batches, as US-Nets and DMCP do. `extract(W)` gives the standalone
`build_model(graph, W)` network with the sliced weights and the current BN statistics, so its
outputs equal the supernet's at W.

The parameters live in the same module tree as `build_model` (stem/stages/head), so a supernet
state_dict has the names of the max-width network's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wtc.errors import ConfigError, WidthsError
from wtc.graph import StageGraph, count_macs
from wtc.nn.build import build_model, module_path
from wtc.registry import Registry
from wtc.widths import Widths, check_widths, make_divisible, steps

# a channel selection: an int n is the prefix [0, n); a tensor is an index into the max layout
Selection = int | Tensor


def supernet_widths(graph: StageGraph, multiplier: float = 1.5) -> dict[str, int]:
    """The supernet's maximum widths: every free group at `multiplier` x base, rounded."""
    if not multiplier > 0:
        raise ConfigError(f"supernet width multiplier must be positive, got {multiplier}")
    step = steps(graph)  # the divisor, or a grouped convolution's group width
    return {g: make_divisible(multiplier * graph.groups[g].base, step[g])
            for g in graph.free_groups}


@dataclass(frozen=True)
class _Step:
    """One op of the forward plan."""

    node: str
    op: str
    inputs: tuple[str, ...]
    module: nn.Module | None
    attrs: dict[str, Any]
    in_groups: tuple[str, ...]
    out_groups: tuple[str, ...]


def _take(t: Tensor | None, dim: int, sel: Selection) -> Tensor | None:
    """The selected channels of `t` along `dim` (a view for a prefix)."""
    if t is None:
        return None
    if isinstance(sel, int):
        return t if sel == t.shape[dim] else t.narrow(dim, 0, sel)
    return t.index_select(dim, sel)


def _conv(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    m = s.module
    w = _take(_take(m.weight, 0, sout), 1, sin)
    return F.conv2d(xs[0], w, _take(m.bias, 0, sout), m.stride, m.padding, m.dilation)


def _dwconv(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    m = s.module
    w = _take(m.weight, 0, sout)
    return F.conv2d(xs[0], w, _take(m.bias, 0, sout), m.stride, m.padding, m.dilation,
                    groups=w.shape[0])


def _gconv(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    """A grouped conv at a fixed group width: the active channels make channels / group_width
    groups (each group's channels stay together under prefix slicing)."""
    m = s.module
    w = _take(m.weight, 0, sout)
    return F.conv2d(xs[0], w, _take(m.bias, 0, sout), m.stride, m.padding, m.dilation,
                    groups=w.shape[0] // s.attrs["group_width"])


def _ln(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    """Layer norm over the active channels (of each position of an NCHW map)."""
    m = s.module
    w, b = _take(m.weight, 0, sout), _take(m.bias, 0, sout)
    x = xs[0]
    if x.dim() == 2:
        return F.layer_norm(x, (w.shape[0],), w, b, m.eps)
    return F.layer_norm(x.permute(0, 2, 3, 1), (w.shape[0],), w, b, m.eps).permute(0, 3, 1, 2)


def _scale(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    return xs[0] * _take(s.module.weight, 0, sout)


def _linear(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    m = s.module
    return F.linear(xs[0], _linear_weight(m.weight, s.attrs, sin, sout), _take(m.bias, 0, sout))


def _linear_weight(w: Tensor, attrs: dict[str, Any], sin: Selection, sout: Selection
                   ) -> Tensor:
    """A linear's weight at the selected channels; after a flatten of an h x w map every input
    channel owns h·w consecutive columns, selected together."""
    area = attrs.get("in_area", 1)
    w = _take(w, 0, sout)
    if area == 1:
        return _take(w, 1, sin)
    rows = w.shape[0]
    return _take(w.reshape(rows, -1, area), 1, sin).reshape(rows, -1)


def _bn(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    """Batch norm on the selected channels; running statistics are updated in place (through
    a view for a prefix, written back for an index)."""
    m = s.module
    use_batch = m.training or not m.track_running_stats
    factor = 0.0
    if m.training and m.track_running_stats:
        m.num_batches_tracked.add_(1)
        factor = (1.0 / float(m.num_batches_tracked)) if m.momentum is None else m.momentum
    mean, var = _take(m.running_mean, 0, sout), _take(m.running_var, 0, sout)
    y = F.batch_norm(xs[0], mean, var, _take(m.weight, 0, sout), _take(m.bias, 0, sout),
                     use_batch, factor, m.eps)
    if not isinstance(sout, int) and m.training and m.track_running_stats:
        m.running_mean.index_copy_(0, sout, mean)
        m.running_var.index_copy_(0, sout, var)
    return y


def _module(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    return s.module(xs[0])  # channel-agnostic: activations, pools, flatten, dropout, identity


def _add(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    y = xs[0]
    for other in xs[1:]:
        y = y + other
    return y


def _mul(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    return xs[0] * xs[1]


def _concat(s: _Step, xs: list[Tensor], sin: Selection, sout: Selection) -> Tensor:
    return torch.cat(xs, dim=1)


# op name → forward at selected channels. An op missing here cannot run slimmed: the supernet
# refuses the spec when it is built, naming the node, instead of failing mid-training.
SLIM_OPS: Registry[Callable[[_Step, list[Tensor], Selection, Selection], Tensor]] = Registry(
    "slimmable op")
for _name, _fn in {"conv": _conv, "dwconv": _dwconv, "linear": _linear, "bn": _bn,
                   "act": _module, "maxpool": _module, "avgpool": _module, "gap": _module,
                   "adaptive_avgpool": _module,
                   "flatten": _module, "dropout": _module, "identity": _module, "add": _add,
                   "mul": _mul, "concat": _concat, "gconv": _gconv, "ln": _ln, "scale": _scale,
                   "droppath": _module, "split": _module, "shuffle": _module}.items():
    SLIM_OPS.add(_name, _fn)

# the parameters and buffers of an op's module that are cut to its channels, when a subnet is
# extracted from the supernet and when `wtc.nn.prune` starts a narrower network from trained
# base weights (the one table of them)
SLICED = {"conv": ("weight", "bias"), "dwconv": ("weight", "bias"),
           "linear": ("weight", "bias"),
           "bn": ("weight", "bias", "running_mean", "running_var"),
           "gconv": ("weight", "bias"), "ln": ("weight", "bias"), "scale": ("weight",)}


def check_slimmable(graph: StageGraph) -> None:
    """Refuse, naming the node, a spec with an op the supernet cannot run slimmed."""
    unsupported = sorted({graph.nx.nodes[n]["op"] for n in graph.order[1:]} - set(SLIM_OPS))
    fixed_groups = [n for n in graph.order[1:] if graph.nx.nodes[n].get("num_groups", 1) > 1
                    and graph.nx.nodes[n]["op"] == "conv"]
    if fixed_groups:  # a prefix of the channels would move channels between the g groups
        raise ConfigError(f"spec '{graph.spec.name}' cannot run as a slimmable supernet: conv "
                          f"'{fixed_groups[0]}' has a fixed number of groups; use gconv (a "
                          "fixed group width) for a grouped conv that changes width")
    if unsupported:
        node = next(n for n in graph.order[1:] if graph.nx.nodes[n]["op"] in unsupported)
        raise ConfigError(f"spec '{graph.spec.name}' cannot run as a slimmable supernet: "
                          f"op(s) {', '.join(unsupported)} (first at node '{node}') have "
                          f"no slimmable forward (supported: {', '.join(SLIM_OPS)})")


class Supernet(nn.Module):
    """A network built once at `max_widths` that runs at any widths up to them.

        net = Supernet(graph)                 # 1.5x base, rounded to the divisor
        net.set_widths(w)                     # any widths respecting the groups, ≤ max
        logits = net(x)
        small = net.extract(w)                # == build_model(graph, w) with these weights
    """

    def __init__(self, graph: StageGraph, max_widths: Mapping[str, int] | None = None, *,
                 multiplier: float = 1.5, init: bool = True) -> None:
        super().__init__()
        check_slimmable(graph)
        self.graph = graph
        maxw = max_widths if max_widths is not None else supernet_widths(graph, multiplier)
        self.max_widths = check_widths(graph, maxw, "supernet max widths")
        net = build_model(graph, self.max_widths, init=init)
        # adopt the built tree so state_dict names equal the max-width network's
        self.stem, self.stages, self.head = net.stem, net.stages, net.head
        modules = dict(self.named_modules())
        self._plan: list[_Step] = []
        for n in graph.order[1:]:
            a = graph.nx.nodes[n]
            self._plan.append(_Step(n, a["op"], tuple(a["inputs"]),
                                    modules.get(module_path(graph, n)), a,
                                    tuple(a["in_groups"]), tuple(a["groups"])))
        self._fixed = {g: grp.base for g, grp in graph.groups.items() if grp.fixed}
        self.gate_nodes = _gate_nodes(graph)
        # group → (max width,) tensor multiplying that group's channels at its gate nodes
        # (DMCP's marginal keep probabilities); None or a missing group: no scaling
        self.channel_gates: dict[str, Tensor] | None = None
        self.widths: dict[str, int] = {}
        self._sel: dict[str, tuple[Selection, Selection]] = {}
        self.set_widths(self.max_widths)

    # ------------------------------------------------------------------ widths

    def check(self, widths: Widths | Mapping[str, int]) -> dict[str, int]:
        """Validated widths (a WidthsError names groups that do not fit or exceed the max)."""
        groups = widths.groups if isinstance(widths, Widths) else widths
        w = check_widths(self.graph, groups)
        over = [f"'{g}' {v} > {self.max_widths[g]}" for g, v in w.items()
                if v > self.max_widths[g]]
        if over:
            raise WidthsError(f"widths exceed the supernet's maximum for group(s) "
                              f"{', '.join(over[:6])}")
        return w

    def set_widths(self, widths: Widths | Mapping[str, int]) -> None:
        """Run at `widths` from now on (no reallocation; only channel selections change)."""
        w = self.check(widths)
        if w == self.widths:
            return
        full = {**self._fixed, **w}
        maxw = {**self._fixed, **self.max_widths}
        device = next(self.parameters()).device
        cache: dict[tuple[str, ...], Selection] = {}

        def select(parts: tuple[str, ...]) -> Selection:
            if parts not in cache:
                cache[parts] = _selection(parts, full, maxw, device)
            return cache[parts]

        self._sel = {s.node: (select(s.in_groups), select(s.out_groups)) for s in self._plan}
        self.widths = w

    @property
    def macs(self) -> int:
        """Analytic MACs at the current widths."""
        return count_macs(self.graph, self.widths)

    # ------------------------------------------------------------------ run

    def forward(self, x: Tensor) -> Tensor:
        env: dict[str, Tensor] = {"input": x}
        sel = self._sel
        gates = self.channel_gates
        for s in self._plan:
            sin, sout = sel[s.node]
            y = SLIM_OPS.get(s.op)(s, [env[i] for i in s.inputs], sin, sout)
            if gates and s.node in self.gate_nodes and s.out_groups[0] in gates:
                g = _take(gates[s.out_groups[0]], 0, sout)
                y = y * g.view(1, -1, *([1] * (y.dim() - 2)))
            env[s.node] = y
        return env[self._plan[-1].node]

    @torch.no_grad()
    def extract(self, widths: Widths | Mapping[str, int] | None = None) -> nn.Module:
        """The standalone `build_model(graph, widths)` network holding this supernet's sliced
        weights and BN statistics (default: the current widths). Same outputs at those widths."""
        if widths is not None:
            self.set_widths(widths)
        with torch.device("meta"):
            small = build_model(self.graph, self.widths, init=False)
        small = small.to_empty(device=next(self.parameters()).device)
        targets = dict(small.named_modules())
        for s in self._plan:
            if s.module is None:
                continue
            sin, sout = self._sel[s.node]
            dst = targets[module_path(self.graph, s.node)]
            for name, value in list(s.module.named_parameters(recurse=False)) + list(
                    s.module.named_buffers(recurse=False)):
                got = value
                if name in SLICED.get(s.op, ()):
                    got = _take(value, 0, sout)
                    if name == "weight" and s.op == "conv":
                        got = _take(got, 1, sin)
                    elif name == "weight" and s.op == "linear":
                        got = _linear_weight(value, s.attrs, sin, sout)
                getattr(dst, name).copy_(got)
        small.train(self.training)
        return small


def _gate_nodes(graph: StageGraph) -> frozenset[str]:
    """Where a group's channels can be scaled as one: after the BN that normalises each
    producer's output (before its activation), or after the producer itself when no BN follows
    it directly. Every producer of a group is gated, so an add sees its inputs scaled alike."""
    out: set[str] = set()
    for grp in graph.groups.values():
        if grp.fixed:
            continue
        for p in grp.producers:
            nxt = list(graph.nx.successors(p))
            bns = [n for n in nxt if graph.nx.nodes[n]["op"] == "bn"]
            out.add(bns[0] if len(nxt) == 1 and bns else p)
    return frozenset(out)


def _selection(parts: tuple[str, ...], full: Mapping[str, int], maxw: Mapping[str, int],
               device: torch.device) -> Selection:
    """Active channels of a tensor made of `parts` (concat parts, in order) in the max layout:
    a prefix length when the active channels are a prefix, else an index tensor."""
    if all(full[p] == maxw[p] for p in parts[:-1]):
        return sum(full[p] for p in parts)
    idx, offset = [], 0
    for p in parts:
        idx.extend(range(offset, offset + full[p]))
        offset += maxw[p]
    return torch.tensor(idx, dtype=torch.long, device=device)
