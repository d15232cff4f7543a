"""Honest prediction (issue 20): a latency table's predicted end-to-end latency against the
measured latency of the built network, same runtime, same threads.

For each spec: `wtc profile` it (the time is printed), then draw random group-respecting widths
(every free group on its step, uniformly between 0.4x and 1.6x of its base), predict each
from the table and measure the built network (`wtc.profile.time_network`: warm-up, repeated
medians). Prints per spec and overall the median and worst relative error |pred − meas| /
meas, of the table's prediction (overhead + scale x the per-layer sum, both fitted by `wtc
profile` on whole networks at five uniform widths) and of the plain per-layer sum, so what the
per-network terms buy is visible. Target: median ≤ 10%.

Timings on a shared machine are noisy; the relative errors are the number to read.
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_latency.py [--threads 1]
     [--runtime torch-cpu] [--samples 10] [specs ...]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import wtc
from wtc.graph.latency import LatencyCost, load_table, table_from_json
from wtc.profile import profile_spec, time_network
from wtc.widths import steps

SPECS = ("specs/resnet20.yaml", "specs/resnet20_fmnist.yaml", "specs/vgg11_cifar.yaml",
         "specs/mobilenetv2_cifar.yaml", "specs/shufflenetv2_fmnist.yaml")


def random_widths(graph, rng: random.Random, lo: float = 0.4, hi: float = 1.6) -> dict:
    st = steps(graph)
    out = {}
    for g in graph.free_groups:
        base = graph.groups[g].base
        a, b = max(1, round(lo * base / st[g])), max(1, round(hi * base / st[g]))
        out[g] = st[g] * rng.randint(a, b)
    return out


def bench_spec(path: str, runtime: str, threads: int, samples: int, folder: Path,
               seed: int) -> dict:
    graph = wtc.compile_spec(wtc.load_spec(path))
    t0 = time.perf_counter()
    table = profile_spec(graph, runtime=runtime, threads=threads, batch=1)
    seconds = time.perf_counter() - t0
    file = folder / f"{graph.spec.name}.{runtime}.json"
    file.write_text(json.dumps(table))
    model = LatencyCost(load_table(file))
    best = LatencyCost(table_from_json(table, str(file), statistic="min"))
    rng = random.Random(seed)
    with_oh, without, with_min = [], [], []
    for _ in range(samples):
        w = random_widths(graph, rng)
        pred = model.cost(graph, w)
        t = time_network(graph, w, runtime=runtime, threads=threads, batch=1)
        with_oh.append(abs(pred - t.median) / t.median)
        plain = (pred - model.table.overhead) / model.table.scale  # the per-layer sum alone
        without.append(abs(plain - t.median) / t.median)
        with_min.append(abs(best.cost(graph, w) - t.best) / t.best)
    return {"spec": graph.spec.name, "profile_s": seconds, "layers": len(table["layers"]),
            "points": sum(_count(x["grid"]) for x in table["layers"]),
            "overhead_ms": table["overhead_s"] * 1e3, "scale": table["scale"],
            "base_ms": model.cost(graph) * 1e3, "with": with_oh, "without": without,
            "min": with_min}


def _count(grid) -> int:
    n = 1
    for ax in grid:
        n *= len(ax)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", default=list(SPECS))
    ap.add_argument("--runtime", default="torch-cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"runtime {args.runtime}, {args.threads} thread(s), batch 1, {args.samples} random "
          "widths per spec; relative error |pred - meas| / meas")
    print(f"{'spec':<22}{'profile s':>10}{'layers':>7}{'points':>7}{'base ms':>9}"
          f"{'ovh ms':>8}{'scale':>7}{'med err':>9}{'worst':>8}{'med (sum)':>11}{'worst':>8}"
          f"{'med (min)':>11}{'worst':>8}")
    all_with, all_without, all_min = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(args.specs):
            r = bench_spec(path, args.runtime, args.threads, args.samples, Path(tmp),
                           args.seed + i)
            all_with += r["with"]
            all_without += r["without"]
            all_min += r["min"]
            print(f"{r['spec']:<22}{r['profile_s']:>10.1f}{r['layers']:>7}{r['points']:>7}"
                  f"{r['base_ms']:>9.3f}{r['overhead_ms']:>8.3f}{r['scale']:>7.2f}"
                  f"{statistics.median(r['with']):>9.1%}{max(r['with']):>8.1%}"
                  f"{statistics.median(r['without']):>11.1%}{max(r['without']):>8.1%}"
                  f"{statistics.median(r['min']):>11.1%}{max(r['min']):>8.1%}",
                  flush=True)
    print(f"{'all':<70}{statistics.median(all_with):>9.1%}{max(all_with):>8.1%}"
          f"{statistics.median(all_without):>11.1%}{max(all_without):>8.1%}"
          f"{statistics.median(all_min):>11.1%}{max(all_min):>8.1%}")
    print("med err: the table's prediction (medians), overhead + scale x per-layer sum (both "
          "fitted per network by `wtc profile`) against the measured median; sum: the "
          "per-layer sum alone; min: the same with the best samples (`--statistic min`) "
          "against the best measured sample")


if __name__ == "__main__":
    main()
