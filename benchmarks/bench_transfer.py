"""Width transfer time between ResNet-50-sized specs (and MobileNetV2), in milliseconds.

Times `wtc.transfer` alone (the graphs are compiled beforehand): non-uniform widths on a
depth-0.5 / width-0.5 proxy carried onto the full network with each stacking rule, and the
identity transfer. Prints the median of repeats and the ratio to the 50 ms target.
Run: .venv/bin/python benchmarks/bench_transfer.py
"""

from __future__ import annotations

import random
import statistics
import time

import wtc
from wtc.widths import make_divisible, widths_from_groups

TARGET_MS = 50.0


def scattered(graph, seed: int = 0):
    rng = random.Random(seed)
    return widths_from_groups(graph, {
        g: make_divisible(graph.groups[g].base * rng.uniform(0.4, 1.5), graph.spec.divisor)
        for g in graph.free_groups})


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main(repeats: int = 21) -> None:
    print(f"{'source → target':<44}{'rule':<13}{'groups':>7}{'median ms':>11}{'/ 50 ms':>9}")
    worst = 0.0
    for path in ("specs/resnet50.yaml", "specs/mobilenetv2.yaml"):
        spec = wtc.load_spec(path)
        target = wtc.compile_spec(spec)
        proxy = wtc.compile_spec(spec.scaled(depth=0.5, width=0.5, name=f"{spec.name}_proxy"))
        w = scattered(proxy)
        cases = [(proxy, w, rule) for rule in ("last", "average", "interpolate")]
        cases.append((target, scattered(target), "identity"))
        for source, widths, rule in cases:
            stacking = "last" if rule == "identity" else rule
            budget = widths.macs if rule == "identity" else None
            ms = median_ms(lambda s=source, w=widths, r=stacking, b=budget, t=target: wtc.transfer(
                w, s, t, stacking=r, target_macs=b), repeats)
            worst = max(worst, ms)
            label = f"{source.spec.name} → {target.spec.name}"
            print(f"{label:<44}{rule:<13}{len(target.free_groups):>7}{ms:>11.2f}"
                  f"{ms / TARGET_MS:>9.3f}")
    print(f"worst median {worst:.2f} ms; target < {TARGET_MS:.0f} ms: "
          f"{'ok' if worst < TARGET_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
