"""torch.nn modules → wtc ops (the `call_module` nodes of a traced network)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import fx, nn

if TYPE_CHECKING:  # the converter calls these functions: annotations only
    from wtc.importer.trace import _Converter

_ACTS = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish",
         nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "hardsigmoid", nn.Tanh: "tanh", nn.Mish: "mish"}


def act_fn(m: nn.Module) -> str | None:
    """wtc's name of an activation module (only the default slope/alpha/exact forms)."""
    if type(m) in _ACTS:
        return _ACTS[type(m)]
    if isinstance(m, nn.GELU) and m.approximate == "none":
        return "gelu"
    if isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.01:
        return "leaky_relu"
    if isinstance(m, nn.ELU) and m.alpha == 1.0:
        return "elu"
    return None


def _square(c: _Converter, node: fx.Node, what: str, value: Any) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            c.fail(node, what, f"wtc ops are square; got {tuple(value)}")
        value = value[0]
    if not isinstance(value, int):
        c.fail(node, what, f"expected a whole number, got {value!r}")
    return value


def convert_module(c: _Converter, node: fx.Node, m: nn.Module) -> None:
    """One module call → a wtc op, an alias, or an ImportFailure naming it."""
    # long: one branch per module kind reads best as one table
    name = type(m).__name__
    x = c.ref(node, node.args[0]) if node.args else c.fail(node, name, "takes no input")
    layout = c.layout[x]
    if layout != "nchw" and isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d,
                                           nn.AdaptiveAvgPool2d, nn.BatchNorm2d)):
        c.fail(node, f"'{name}'", f"needs an NCHW map, got a {layout} tensor")
    if isinstance(m, nn.Conv2d):
        _conv(c, node, m, x)
    elif isinstance(m, nn.Linear):
        w = {"weight": m.weight.detach()}
        if m.bias is not None:
            w["bias"] = m.bias.detach()
        if layout == "nhwc":  # a Linear over the channels of every position: a 1x1 conv
            w["weight"] = w["weight"].reshape(*w["weight"].shape, 1, 1)
            c.add(node, "conv", [x], {"out": m.out_features, "kernel": 1,
                                      "bias": m.bias is not None}, w)
        elif layout == "flat":
            c.add(node, "linear", [x], {"out": m.out_features, "bias": m.bias is not None}, w)
        else:
            c.fail(node, name, "a Linear on an NCHW map (flatten it, or permute to "
                   "channels-last)")
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        _bn(c, node, m, x, name)
    elif isinstance(m, nn.LayerNorm):
        _layer_norm(c, node, x, tuple(m.normalized_shape), m.weight, m.bias, m.eps, name)
    elif act_fn(m) is not None:
        c.add(node, "act", [x], {"fn": act_fn(m)})
    elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        _pool(c, node, m, x)
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        size = _square(c, node, name, m.output_size)
        if size == 1:
            c.add(node, "gap", [x])
        else:
            c.add(node, "adaptive_avgpool", [x], {"size": size})
    elif isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            c.fail(node, name, "only Flatten(1) (N, C·H·W)")
        c.add(node, "flatten", [x], layout="flat")
    elif isinstance(m, nn.Dropout):
        c.add(node, "dropout", [x], {"p": float(m.p)})
    elif isinstance(m, nn.Identity):
        c.alias(node, x)
    elif name in ("StochasticDepth", "DropPath"):
        if getattr(m, "mode", "row") != "row":
            c.fail(node, name, "stochastic depth per batch (mode='batch') has no wtc op")
        c.add(node, "droppath", [x], {"p": float(getattr(m, "p", getattr(m, "drop_prob",
                                                                          0.0)))})
    else:
        c.fail(node, f"'{name}'", "no wtc op for this module")


def _bn(c: _Converter, node: fx.Node, m: nn.Module, x: str, name: str) -> None:
    """A batch norm, and the activation of timm's BatchNormAct2d (a bn with `act`)."""
    if not (m.affine and m.track_running_stats) or m.momentum is None:
        c.fail(node, name, "wtc's bn has an affine scale and running statistics "
               "(momentum given)")
    act, drop = getattr(m, "act", None), getattr(m, "drop", None)
    extra = [s for s in (act, drop) if isinstance(s, nn.Module) and not isinstance(s, nn.Identity)]
    state = {k: v.detach() for k, v in m.state_dict().items() if "." not in k}
    if not extra:
        c.add(node, "bn", [x], {"eps": m.eps, "momentum": m.momentum}, state)
        return
    fn = act_fn(act) if isinstance(act, nn.Module) else None
    if (drop is not None and not isinstance(drop, nn.Identity)) or fn is None:
        c.fail(node, name, f"a batch norm with {type(act).__name__} / {type(drop).__name__}")
    bn = f"{node.name}_bn"
    c.add(node, "bn", [x], {"eps": m.eps, "momentum": m.momentum}, state, name=bn)
    c.add(node, "act", [bn], {"fn": fn}, path=f"{node.target}.act")


def _state(m: nn.Module) -> dict[str, Any]:
    return {k: v.detach() for k, v in m.state_dict().items()}


def _conv(c: _Converter, node: fx.Node, m: nn.Conv2d, x: str) -> None:
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        c.fail(node, "'Conv2d'", "only zero padding given as a number")
    k = _square(c, node, "'Conv2d'", m.kernel_size)
    attrs: dict[str, Any] = {"kernel": k, "stride": _square(c, node, "'Conv2d'", m.stride),
                             "padding": _square(c, node, "'Conv2d'", m.padding),
                             "dilation": _square(c, node, "'Conv2d'", m.dilation),
                             "bias": m.bias is not None}
    g, cin, cout = m.groups, m.in_channels, m.out_channels
    if g == 1:
        op = "conv"
        attrs["out"] = cout
    elif g == cin == cout:
        op = "dwconv"
    elif cin == cout:
        op = "gconv"
        attrs["group_width"] = cin // g
    else:
        op = "conv"
        attrs.update(out=cout, groups=g)
    c.add(node, op, [x], attrs, _state(m))


def _pool(c: _Converter, node: fx.Node, m: nn.Module, x: str) -> None:
    name = type(m).__name__
    if isinstance(m, nn.MaxPool2d) and (_square(c, node, name, m.dilation) != 1
                                        or m.return_indices):
        c.fail(node, name, "only undilated max pooling without indices")
    if isinstance(m, nn.AvgPool2d) and ((not m.count_include_pad and m.padding not in (0, (0, 0)))
                                        or m.divisor_override):
        c.fail(node, name, "only average pooling that counts the padding (or has none)")
    attrs = {"kernel": _square(c, node, name, m.kernel_size),
             "stride": _square(c, node, name, m.stride),
             "padding": _square(c, node, name, m.padding), "ceil_mode": bool(m.ceil_mode)}
    c.add(node, "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool", [x], attrs)


def _layer_norm(c: _Converter, node: fx.Node, x: str, shape: tuple[int, ...], weight: Any,
                bias: Any, eps: float, what: str) -> None:
    """A layer norm over the channels: of a channels-last map, or of flat features."""
    layout = c.layout[x]
    size = c.shape(node)
    channels = size[3] if layout == "nhwc" else size[1]
    if layout == "nchw" or shape != (channels,) or weight is None or bias is None:
        c.fail(node, what, "wtc's ln normalises the channels of each position (with a scale "
               "and a shift); permute to channels-last first")
    c.add(node, "ln", [x], {"eps": float(eps)},
          {"weight": weight.detach(), "bias": bias.detach()})
