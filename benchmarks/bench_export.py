"""Verified ONNX export time per spec, TorchScript vs the torch.export-based (dynamo) exporter.

Each export includes build, torch.onnx, onnx.checker and one onnxruntime comparison (what
`wtc export` does). The first export of each exporter in the process pays its imports; a
warm-up export is run and not counted. Prints seconds per spec and the dynamo/TorchScript
ratio (why `exporter="auto"` prefers TorchScript while torch ships it).
Run: .venv/bin/python benchmarks/bench_export.py [--res 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import wtc
from wtc.export import export_onnx

SPECS = ["specs/tiny/resnet_tiny.yaml", "specs/resnet20.yaml", "specs/resnet56.yaml",
         "specs/mobilenetv2_cifar.yaml", "specs/resnet50.yaml", "specs/mobilenetv2.yaml"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=64, help="resolution for the 224-px specs")
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.onnx"
        warm = wtc.compile_spec(wtc.load_spec(SPECS[0]))
        for ex in ("torchscript", "dynamo"):
            export_onnx(warm, None, out, exporter=ex, opset=18)
        print(f"{'spec':<32}{'torchscript s':>14}{'dynamo s':>10}{'ratio':>8}{'rel diff':>10}")
        for path in SPECS:
            spec = wtc.load_spec(path)
            res = args.res if spec.input.resolution > 64 else None
            graph = wtc.compile_spec(spec)
            times, rel = {}, 0.0
            for ex in ("torchscript", "dynamo"):
                t = time.perf_counter()
                rep = export_onnx(graph, None, out, exporter=ex, opset=18, resolution=res)
                times[ex] = time.perf_counter() - t
                rel = max(rel, rep.rel_diff)
            print(f"{path:<32}{times['torchscript']:>14.2f}{times['dynamo']:>10.2f}"
                  f"{times['dynamo'] / times['torchscript']:>8.1f}{rel:>10.1e}")


if __name__ == "__main__":
    main()
