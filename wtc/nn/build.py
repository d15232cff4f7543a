"""StageGraph + Widths → torch.nn.Module, with submodule names that follow the spec.

`stages.2.blocks.0.conv1.weight` is node `stage3.block0.conv1`: a state_dict reads like the
YAML. Each block runs its own small op graph; the network runs its blocks in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from wtc.graph import StageGraph, check_memory
from wtc.graph.cost import channels
from wtc.nn.layers import ChannelChunk, ChannelShuffle, DropPath, LayerNorm2d, LayerScale
from wtc.registry import Registry
from wtc.spec.ops import OPS
from wtc.widths import Widths, check_widths

# op name → factory(attrs, in_channels, out_channels, inplace) → module (None: functional op)
OP_MODULES: Registry[Any] = Registry("torch op")

_ACT = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "hardswish": nn.Hardswish,
        "hardsigmoid": nn.Hardsigmoid, "mish": nn.Mish, "elu": nn.ELU,
        "leaky_relu": nn.LeakyReLU}
_ACT_NO_INPLACE = {"sigmoid": nn.Sigmoid, "gelu": nn.GELU, "tanh": nn.Tanh}
# ops whose output is a new tensor, so an activation after them may work in place (identity,
# dropout and droppath at eval, split (a view) return their input or a view of it)
_FRESH = frozenset({"conv", "gconv", "dwconv", "linear", "bn", "ln", "add", "mul", "concat",
                    "maxpool", "avgpool", "gap", "adaptive_avgpool", "scale"})


def _act(a: dict[str, Any], cin: int, cout: int, inplace: bool) -> nn.Module:
    if a["fn"] in _ACT:
        return _ACT[a["fn"]](inplace=inplace)
    return _ACT_NO_INPLACE[a["fn"]]()


def _conv(a: dict[str, Any], cin: int, cout: int, groups: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, a["kernel"], a["stride"], a["padding"], dilation=a["dilation"],
                     groups=groups, bias=a["bias"])


for _name, _factory in {
    "conv": lambda a, cin, cout, ip: _conv(a, cin, cout, a["num_groups"]),
    "gconv": lambda a, cin, cout, ip: _conv(a, cin, cin, cin // a["group_width"]),
    "dwconv": lambda a, cin, cout, ip: _conv(a, cin, cin, cin),
    "linear": lambda a, cin, cout, ip: nn.Linear(cin * a.get("in_area", 1), cout,
                                                 bias=a["bias"]),
    "bn": lambda a, cin, cout, ip: (
        nn.BatchNorm2d(cin, eps=a["eps"], momentum=a["momentum"]) if a["out_hw"] is not None
        else nn.BatchNorm1d(cin, eps=a["eps"], momentum=a["momentum"])),
    "ln": lambda a, cin, cout, ip: (LayerNorm2d(cin, eps=a["eps"]) if a["out_hw"] is not None
                                    else nn.LayerNorm(cin, eps=a["eps"])),
    "scale": lambda a, cin, cout, ip: LayerScale(cin, a["init"], a["out_hw"] is not None),
    "droppath": lambda a, cin, cout, ip: DropPath(a["p"]),
    "split": lambda a, cin, cout, ip: ChannelChunk(a["chunks"], a["chunk"]),
    "shuffle": lambda a, cin, cout, ip: ChannelShuffle(a["num_groups"]),
    "act": _act,
    "maxpool": lambda a, cin, cout, ip: nn.MaxPool2d(a["kernel"], a["stride"], a["padding"],
                                                     ceil_mode=a["ceil_mode"]),
    "avgpool": lambda a, cin, cout, ip: nn.AvgPool2d(a["kernel"], a["stride"], a["padding"],
                                                     ceil_mode=a["ceil_mode"]),
    "gap": lambda a, cin, cout, ip: nn.AdaptiveAvgPool2d(1),
    "adaptive_avgpool": lambda a, cin, cout, ip: nn.AdaptiveAvgPool2d(a["size"]),
    "flatten": lambda a, cin, cout, ip: nn.Flatten(1),
    "dropout": lambda a, cin, cout, ip: nn.Dropout(a["p"]),
    "identity": lambda a, cin, cout, ip: nn.Identity(),
    "add": None,
    "mul": None,
    "concat": None,
}.items():
    OP_MODULES.add(_name, _factory)
if set(OP_MODULES) != set(OPS):  # pragma: no cover - a new op without a torch module
    raise RuntimeError(f"ops without a torch module: {sorted(set(OPS) - set(OP_MODULES))}")


class Block(nn.Module):
    """One block: its ops as named submodules, run in order over a local name → tensor map."""

    def __init__(self, plan: list[tuple[str, str, tuple[str, ...], nn.Module | None]]) -> None:
        super().__init__()
        self.plan = [(role, op, ins) for role, op, ins, _ in plan]
        for role, _, _, module in plan:
            if module is not None:
                self.add_module(role, module)
        self._mods = {role: m for role, _, _, m in plan if m is not None}
        self.output = plan[-1][0]
        # a straight chain needs no name → tensor map (the common case: conv-bn-act, pools)
        self.chain = all(ins == ((plan[i - 1][0],) if i else ("input",))
                         for i, (_, _, ins, _) in enumerate(plan)) and all(
            m is not None for *_, m in plan)

    def forward(self, x: Tensor) -> Tensor:
        if self.chain:
            for m in self._mods.values():
                x = m(x)
            return x
        env = {"input": x}
        mods = self._mods
        for role, op, ins in self.plan:
            if op == "add":
                y = env[ins[0]]
                for other in ins[1:]:
                    y = y + env[other]
            elif op == "mul":
                y = env[ins[0]] * env[ins[1]]
            elif op == "concat":
                y = torch.cat([env[i] for i in ins], dim=1)
            else:
                y = mods[role](env[ins[0]])
            env[role] = y
        return env[self.output]


class Stage(nn.Module):
    def __init__(self, blocks: list[Block]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        for b in self.blocks:
            x = b(x)
        return x


class WtcNet(nn.Module):
    """The built network: `stem`, `stages`, `head`, as in the spec."""

    def __init__(self, stem: list[Block], stages: list[Stage], head: list[Block],
                 spec_name: str, spec_hash: str, groups: dict[str, int]) -> None:
        super().__init__()
        self.stem = nn.ModuleList(stem)
        self.stages = nn.ModuleList(stages)
        self.head = nn.ModuleList(head)
        self.spec_name, self.spec_hash, self.widths = spec_name, spec_hash, dict(groups)

    def forward(self, x: Tensor) -> Tensor:
        for b in self.stem:
            x = b(x)
        for s in self.stages:
            x = s(x)
        for b in self.head:
            x = b(x)
        return x


def module_path(graph: StageGraph, node: str) -> str:
    """The submodule name of a graph node: `stage2.block0.conv1` → `stages.1.blocks.0.conv1`."""
    a = graph.nx.nodes[node]
    if a["stage"] in ("stem", "head"):
        return f"{a['stage']}.{a['block_index']}.{a['role']}"
    return f"stages.{a['stage_index']}.blocks.{a['block_index']}.{a['role']}"


def build_model(graph: StageGraph, widths: Widths | Mapping[str, int] | None = None,
                init: bool = True) -> WtcNet:
    """A runnable module for any widths that respect the graph's groups (default: base).

    With `init` (the default) modules are created on the meta device and initialised once with
    `init_weights`, instead of paying torch's default init and then ours; `init=False` keeps
    torch's per-layer defaults (for callers that load a state_dict next)."""
    free = _checked_widths(graph, widths)
    # refuse (exit 2) before allocating what the machine cannot hold
    check_memory(graph, None if widths is None else free)
    if init:
        with torch.device("meta"):
            model = _build(graph, free)
        model = model.to_empty(device="cpu")
        init_weights(model)
        return model
    return _build(graph, free)


def _checked_widths(graph: StageGraph, widths: Widths | Mapping[str, int] | None
                    ) -> dict[str, int]:
    if widths is not None:
        groups = widths.groups if isinstance(widths, Widths) else widths
        if isinstance(widths, Widths) and widths.spec_hash != graph.spec_hash:
            from wtc.errors import WidthsError

            raise WidthsError(f"widths for spec '{widths.spec_name}' ({widths.spec_hash}) do not "
                              f"fit '{graph.spec.name}' ({graph.spec_hash})")
        free = check_widths(graph, groups)
    else:
        free = {g: graph.groups[g].base for g in graph.free_groups}
    return free


def _build(graph: StageGraph, free: dict[str, int]) -> WtcNet:
    chans = channels(graph, free)
    consumers = {n: graph.nx.out_degree(n) for n in graph.order}
    blocks: dict[tuple[str, int], Block] = {}
    for stage, index, nodes in graph.blocks():
        prefix = f"{stage}.block{index}."
        plan = []
        for n in nodes:
            a = graph.nx.nodes[n]
            cin = sum(chans[g] for g in a["in_groups"])
            cout = sum(chans[g] for g in a["groups"])
            source = a["inputs"][0]
            inplace = (a["op"] == "act" and consumers[source] == 1
                       and graph.nx.nodes[source]["op"] in _FRESH)
            factory = OP_MODULES.get(a["op"])
            module = factory(a, cin, cout, inplace) if factory is not None else None
            ins = tuple(i[len(prefix):] if i.startswith(prefix) else "input" for i in a["inputs"])
            plan.append((a["role"], a["op"], ins, module))
        blocks[(stage, index)] = Block(plan)
    stem = [b for (s, _), b in blocks.items() if s == "stem"]
    head = [b for (s, _), b in blocks.items() if s == "head"]
    stages = [Stage([b for (s, _), b in blocks.items() if s == st.name])
              for st in graph.spec.stages]
    return WtcNet(stem, stages, head, graph.spec.name, graph.spec_hash, free)


def init_weights(model: nn.Module) -> None:
    """torchvision's ResNet/MobileNet initialisation: He (fan_out) convs, unit BN, small FC."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.reset_running_stats()
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, LayerScale):
            m.reset_parameters()
