"""The runtimes a latency is measured on, one registry: torch eager on the CPU, onnxruntime on
the CPU, torch on CUDA. A runtime turns (module, example inputs) into a callable that runs one
forward pass and returns once the result exists (CUDA synchronises), so timing it is honest.
torch is imported when a runtime is used, so listing the runtimes (help) imports none. The names
are the ones a latency table may record (`wtc.graph.latency.RUNTIMES`), checked at import.
"""

from __future__ import annotations

import contextlib
import io
import platform
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wtc.errors import ConfigError
from wtc.graph import latency
from wtc.registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Runtime:
    name: str
    device: str
    prepare: Callable[[torch.nn.Module, tuple[torch.Tensor, ...], int], Callable[[], Any]]
    available: Callable[[], str | None]  # None, or why it cannot run here
    versions: Callable[[], dict[str, str]]


def _torch_versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__, "python": platform.python_version()}


def _torch_cpu(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], threads: int
               ) -> Callable[[], Any]:
    import torch

    module = module.eval()

    def run() -> Any:
        with torch.inference_mode():
            return module(*inputs)

    return run


def _cuda(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], threads: int
          ) -> Callable[[], Any]:
    import torch

    module = module.eval().cuda()
    on_gpu = tuple(x.cuda() for x in inputs)

    def run() -> Any:
        with torch.inference_mode():
            y = module(*on_gpu)
        torch.cuda.synchronize()
        return y

    return run


def _onnx_session(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], threads: int
                  ) -> Callable[[], Any]:
    import onnxruntime as ort
    import torch

    buf = io.BytesIO()
    names = [f"x{i}" for i in range(len(inputs))]
    with _quiet():
        torch.onnx.export(module.eval(), inputs, buf, input_names=names, output_names=["y"],
                          opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(buf.getvalue(), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    feed = {n: x.numpy() for n, x in zip(names, inputs, strict=True)}
    return lambda: sess.run(None, feed)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _onnx_versions() -> dict[str, str]:
    import onnxruntime as ort

    return {**_torch_versions(), "onnxruntime": ort.__version__}


def _cuda_available() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is visible to torch on this machine"
    return None


def _cuda_versions() -> dict[str, str]:
    import torch

    return {**_torch_versions(), "cuda": str(torch.version.cuda),
            "device": torch.cuda.get_device_name(0)}


RUNTIMES: Registry[Runtime] = Registry("runtime")
RUNTIMES.add("torch-cpu", Runtime("torch-cpu", "cpu", _torch_cpu, lambda: None, _torch_versions))
RUNTIMES.add("onnxruntime-cpu", Runtime("onnxruntime-cpu", "cpu", _onnx_session, lambda: None,
                                        _onnx_versions))
RUNTIMES.add("cuda", Runtime("cuda", "cuda", _cuda, _cuda_available, _cuda_versions))
if set(RUNTIMES) != set(latency.RUNTIMES):  # a table names its runtime by these names
    raise ConfigError(f"runtimes {RUNTIMES.names()} differ from the names a latency table "
                      f"records: {sorted(latency.RUNTIMES)}")


def get_runtime(name: str) -> Runtime:
    """The runtime, or a ConfigError when it is unknown or cannot run on this machine."""
    rt = RUNTIMES.get(name)
    why = rt.available()
    if why is not None:
        raise ConfigError(f"runtime '{name}' cannot run here: {why}")
    return rt


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set for a measurement, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
