"""Whether a run compiles its training forward with `torch.compile` (inductor), and doing it.

`compile: auto | true | false` (`TrainConfig.compile`). Compiling fuses BN, ReLU and the
elementwise ops into generated kernels, but costs tens of seconds per network before the
first step, and a network whose shapes change between steps (a slimmable supernet: AutoSlim's
and DMCP's sandwich steps set new widths every forward) would recompile for every new width
set. Measured on this project's CPU (`benchmarks/bench_precision.py --compiled`, one thread):
ResNet-20 Fashion-MNIST, bf16 + channels_last, a compiled step runs 0.93x (0.5x MACs) and 0.89x
(0.1x) as fast as eager, after 90-120 s of compilation (the convolutions are oneDNN's either
way, and inductor's fused BN/ReLU kernels took as long as ATen's); even a two-layer net takes
~20 s, longer than a whole tiny-proxy search. So `auto` is off on CPU. On CUDA it is
off as well until a GPU measurement says otherwise (`scripts/gpu_check.sh` has none yet).
`true` compiles wherever the method's steps have static shapes (`TrainHooks.static_shapes`)
and is ignored, as recorded, where they do not.

Compiled and eager runs compute the same function but not bitwise the same numbers (fused
kernels round differently); a run resumes in the mode it was started with, and checkpoints hold
the uncompiled module's state, so either mode reads them.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from wtc.errors import ConfigError

Compile = bool | Literal["auto"]
BACKEND = "inductor"  # the backend `torch.compile` uses (tests may pick a lighter one)


def resolve_compile(requested: Compile, device: torch.device, *, static_shapes: bool = True
                    ) -> bool:
    """Whether to compile: `auto` is off (measured: no gain on CPU, see the module doc; CUDA
    unmeasured); `true` only where the training step's shapes are static."""
    if requested == "auto":
        return False
    if not isinstance(requested, bool):
        raise ConfigError(f"compile must be true, false or auto, not {requested!r}")
    return requested and static_shapes


def compile_model(model: nn.Module) -> nn.Module:
    """`model` compiled for training (static shapes: the loader's batches all have one size)."""
    return torch.compile(model, backend=BACKEND, dynamic=False)
