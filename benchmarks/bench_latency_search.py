"""Does a latency search pay (issue 20, item 4)? The capacity search at a latency budget against
uniform widths, measured end to end on the same runtime and threads as the table.

Per spec, with M = `--multiplier` x the spec's MACs and a table profiled here:

    uniform      uniform widths at the MACs target M (the reference)
    capacity     `wtc search -m capacity --cost latency:TABLE` at the latency L the table
                 predicts for `uniform` (the most MACs L buys: channels moved from groups where
                 a MAC costs more time to groups where it costs less; no training)
    uniform@eq   uniform widths at capacity's MACs (uniform widths of equal MACs)

so capacity / uniform at equal predicted latency shows the MACs it buys and whether the measured
latency holds, and capacity / uniform@eq at equal MACs shows whether it runs faster than MACs
say. The three are timed interleaved in one process (`--rounds` rounds, their order rotated per
round); each round gives a ratio, printed as the median over rounds [min, max]. Timings use
the best sample of each measurement and a table priced with its best samples (`--statistic
min`: steadier than medians when other processes load the machine); `--statistic median` uses
medians for both. The load average is printed: every number here is a ratio taken under it.
Accuracy is not measured here (no training).
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_latency_search.py [--threads 1]
     [--multiplier 0.5] [--rounds 7] [--repeats 7] [specs ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import wtc
from wtc.graph.latency import LatencyCost, table_from_json
from wtc.profile import profile_spec, time_network
from wtc.widths import uniform_widths

SPECS = ("specs/mobilenetv2_fmnist.yaml", "specs/vgg11_fmnist.yaml",
         "specs/resnet20_fmnist.yaml", "specs/shufflenetv2_fmnist.yaml")
NAMES = ("uniform", "capacity", "uniform@eq")


def interleaved(graph, named: dict, args) -> dict[str, list[float]]:
    """Seconds per network and round, the order rotated each round."""
    times: dict[str, list[float]] = {k: [] for k in named}
    keys = list(named)
    for r in range(args.rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            t = time_network(graph, named[k], runtime=args.runtime, threads=args.threads,
                             batch=1)
            times[k].append(t.best if args.statistic == "min" else t.median)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> tuple[float, float, float]:
    rs = [x / y for x, y in zip(times[a], times[b], strict=True)]
    return statistics.median(rs), min(rs), max(rs)


def bench_spec(path: str, folder: Path, args) -> dict:
    g = wtc.compile_spec(wtc.load_spec(path))
    t0 = time.perf_counter()
    raw = profile_spec(g, runtime=args.runtime, threads=args.threads, batch=1,
                       repeats=args.repeats)
    profile_s = time.perf_counter() - t0
    file = folder / f"{g.spec.name}.json"
    file.write_text(json.dumps(raw))
    model = LatencyCost(table_from_json(raw, str(file), statistic=args.statistic))
    uni = uniform_widths(g, target_macs=round(args.multiplier * wtc.count_macs(g)))
    budget = model.cost(g, uni.groups)
    t0 = time.perf_counter()
    cap = wtc.search(g, "capacity", budget, cost=model)
    search_s = time.perf_counter() - t0
    eq = uniform_widths(g, target_macs=cap.macs)
    named = {"uniform": uni.groups, "capacity": cap.groups, "uniform@eq": eq.groups}
    times = interleaved(g, named, args)
    return {"spec": g.spec.name, "profile_s": profile_s, "search_s": search_s,
            "uniform_ms": statistics.median(times["uniform"]) * 1e3,
            "macs": cap.macs / uni.macs, "eq_macs": eq.macs / uni.macs,
            "pred": model.cost(g, cap.groups) / budget,
            "vs_uniform": ratio(times, "capacity", "uniform"),
            "vs_eq": ratio(times, "capacity", "uniform@eq"),
            "eq_vs_uniform": ratio(times, "uniform@eq", "uniform")}


def _r(x: tuple[float, float, float]) -> str:
    return f"{x[0]:.3f} [{x[1]:.3f}, {x[2]:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", default=list(SPECS))
    ap.add_argument("--runtime", default="torch-cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--multiplier", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=7, help="timed samples per table point")
    ap.add_argument("--statistic", choices=("min", "median"), default="min")
    args = ap.parse_args()
    print(f"runtime {args.runtime}, {args.threads} thread(s), batch 1, uniform at "
          f"{args.multiplier}x MACs, {args.rounds} interleaved rounds, table {args.repeats} "
          f"samples per point, statistic "
          f"{args.statistic}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'spec':<21}{'prof s':>7}{'srch s':>7}{'uni ms':>8}{'MACs cap/uni':>13}"
          f"{'pred lat':>9}{'meas lat cap/uni':>25}{'meas cap/uni@eq MACs':>25}"
          f"{'uni@eq/uni':>25}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.specs:
            r = bench_spec(path, Path(tmp), args)
            print(f"{r['spec']:<21}{r['profile_s']:>7.1f}{r['search_s']:>7.1f}"
                  f"{r['uniform_ms']:>8.3f}{r['macs']:>13.3f}{r['pred']:>9.3f}"
                  f"{_r(r['vs_uniform']):>25}{_r(r['vs_eq']):>25}{_r(r['eq_vs_uniform']):>25}",
                  flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}. MACs cap/uni: capacity's MACs "
          "over uniform's at the same predicted latency; pred lat: the table's predicted "
          "latency ratio; meas: measured latency ratios, median over rounds [min, max] (< 1: "
          "capacity faster)")


if __name__ == "__main__":
    main()
