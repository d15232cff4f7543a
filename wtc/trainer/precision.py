"""Numeric precision and memory format of a run, and what `auto` means on this machine.

Training on CPU is bounded by MACs per second. On a CPU with native bf16 arithmetic
(x86 AVX-512 BF16 or AMX, Arm's BF16 extension) bf16 autocast with channels_last tensors is
2-3x faster than fp32 NCHW at the same accuracy (`benchmarks/bench_precision.py`); elsewhere bf16
is emulated and slower, so `auto` keeps fp32 there. The hardware is read, never guessed: the
CPU's feature flags (`/proc/cpuinfo`), CUDA's own bf16 query. On CPU, grouped and depthwise
convolutions (MobileNet, ShuffleNet, RegNet, ResNeXt) run slower in bf16 than in fp32 with
oneDNN (ShuffleNetV2 at 0.5x the fp32 speed in the benchmark), so `auto` keeps such networks
in fp32 with channels_last, which alone is 1.5-2x faster there.

Autocast runs convolutions and linear layers in the lower precision; weights, gradients, the
optimizer and BN statistics stay fp32 (what `torch.autocast` does), so a checkpoint, resume and
ONNX export are the same in every precision.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from wtc.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# /proc/cpuinfo flags of native bf16 arithmetic (x86: AVX-512 BF16, AMX; Arm: FEAT_BF16)
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.cache
def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The CPU feature flags that mean native bf16 arithmetic (empty when there are none or
    the CPU cannot be read: then `auto` stays fp32)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return ()
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found |= _BF16_FLAGS & set(value.split())
    return tuple(sorted(found))


@dataclass(frozen=True)
class Runtime:
    """The precision and memory format a run actually uses (`auto` resolved)."""

    precision: str  # "fp32" | "bf16" | "fp16"
    channels_last: bool

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype (None: fp32, no autocast)."""
        return _DTYPES.get(self.precision)

    def autocast(self, device: torch.device) -> Any:
        """The autocast context of this runtime on `device` (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch in this runtime's memory format."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def to_json(self) -> dict[str, Any]:
        return {"precision": self.precision, "channels_last": self.channels_last}


FP32 = Runtime("fp32", False)  # what wtc did on CPU before precision existed


def has_grouped_conv(model: torch.nn.Module) -> bool:
    """Whether `model` has a grouped or depthwise convolution (slow in bf16 on CPU)."""
    return any(isinstance(m, torch.nn.modules.conv._ConvNd) and m.groups > 1
               for m in model.modules())


def resolve_precision(requested: str, device: torch.device, *, grouped_conv: bool = False
                      ) -> str:
    """A concrete precision for `device`: `auto` is bf16 where the hardware runs it natively
    (a CPU with bf16 flags and a network without grouped convolutions, a CUDA device that
    reports bf16 support), else fp32. fp16 needs CUDA (CPU fp16 autocast is emulated and
    slower than fp32)."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; on CPU use bf16 (native on CPUs "
                          "with AVX-512 BF16 or AMX) or fp32")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_bf16_flags() and not grouped_conv else "fp32"
    return "fp32"


def resolve_channels_last(requested: bool | str, device: torch.device) -> bool:
    """`auto` is on for CPU and CUDA, where NHWC convolutions are faster (oneDNN and cuDNN
    both prefer it; measured in `benchmarks/bench_precision.py`), off elsewhere."""
    if isinstance(requested, bool):
        return requested
    if requested != "auto":
        raise ConfigError(f"channels_last must be true, false or auto, not {requested!r}")
    return device.type in ("cpu", "cuda")


def resolve_runtime(precision: str, channels_last: bool | str, device: torch.device, *,
                    grouped_conv: bool = False) -> Runtime:
    """The Runtime for the requested settings on `device` (`grouped_conv`: the network has
    grouped or depthwise convolutions; see `has_grouped_conv`)."""
    return Runtime(resolve_precision(precision, device, grouped_conv=grouped_conv),
                   resolve_channels_last(channels_last, device))
