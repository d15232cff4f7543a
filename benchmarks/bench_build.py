"""YAML → nn.Module time for ResNet-50 and MobileNetV2 (torch already imported; not counted).

Prints per-phase medians (load, compile, build with weight init) in milliseconds, the same
without wtc's init (torch's defaults), and torchvision's constructor for scale. Target: under
100 ms. Weight init is mostly random-number generation (ResNet-50 has 25.6 M weights).
Run: .venv/bin/python benchmarks/bench_build.py
"""

from __future__ import annotations

import statistics
import time

import torch  # noqa: F401  (imported before timing: torch import is excluded)
import torchvision

import wtc


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t) * 1e3


def main(repeats: int = 15) -> None:
    print(f"{'spec':<24}{'load ms':>10}{'compile ms':>12}{'build ms':>10}{'total ms':>10}"
          f"{'(no init)':>11}")
    for path in ("specs/resnet50.yaml", "specs/mobilenetv2.yaml"):
        rows = []
        for _ in range(repeats):
            spec, t_load = timed(wtc.load_spec, path)
            graph, t_compile = timed(wtc.compile_spec, spec)
            _, t_build = timed(wtc.build_model, graph)
            _, t_noinit = timed(wtc.build_model, graph, init=False)
            rows.append((t_load, t_compile, t_build, t_noinit))
        med = [statistics.median(c) for c in zip(*rows, strict=True)]
        total = med[0] + med[1] + med[2]
        print(f"{path:<24}{med[0]:>10.1f}{med[1]:>12.1f}{med[2]:>10.1f}{total:>10.1f}"
              f"{med[0] + med[1] + med[3]:>11.1f}")
        factory = {"specs/resnet50.yaml": torchvision.models.resnet50,
                   "specs/mobilenetv2.yaml": torchvision.models.mobilenet_v2}[path]
        ref = statistics.median(timed(factory)[1] for _ in range(repeats))
        print(f"{'  torchvision model()':<24}{'':>10}{'':>12}{ref:>10.1f}{ref:>10.1f}"
              f"{'':>11}   wtc/torchvision {total / ref:.2f}")


if __name__ == "__main__":
    main()
