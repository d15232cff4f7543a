"""Tabulate benchmarks/precision_accuracy.sh: test top-1 of ResNet-20 (Fashion-MNIST, 10 epochs
on 25% of the images) in fp32 NCHW and in bf16 + channels_last; the bf16 mean must lie within
one pooled standard deviation of the fp32 mean. Printed for seeds 0-2 (the issue's check) and,
where more seeds ran (the README's pre-registered extension, seeds 3-7), for all of them.

Run: .venv/bin/python benchmarks/precision_accuracy.py [OUT=runs/precision_accuracy]
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided Welch t-test p-value (scipy-free: the t distribution's CDF by numerical
    integration of its density, enough for a table)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return 1.0
    t = abs(statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    n, hi = 20000, t
    step = hi / n
    area = sum(c * (1 + ((i + 0.5) * step) ** 2 / df) ** (-(df + 1) / 2) for i in range(n)) * step
    return max(0.0, min(1.0, 1 - 2 * area))


def table(runs: dict[str, dict[int, dict]], seeds: list[int], title: str) -> None:
    print(f"{title}\n{'path':<22}{'seeds':>6}{'top-1 % (mean ± std)':>24}{'s/run':>8}")
    stats, tops = {}, {}
    for name, by_seed in runs.items():
        rows = [by_seed[s] for s in seeds if s in by_seed]
        if not rows:
            continue
        top = [100 * r["top1"] for r in rows]
        sec = statistics.fmean(r["seconds"] for r in rows)
        std = statistics.stdev(top) if len(top) > 1 else 0.0
        stats[name], tops[name] = (statistics.fmean(top), std, len(top)), top
        layout = "channels_last" if rows[0].get("channels_last") else "NCHW"
        print(f"{rows[0]['precision'] + ' ' + layout:<22}{len(top):>6}"
              f"{stats[name][0]:>15.2f} ± {std:.2f}{sec:>8.0f}   "
              + ", ".join(f"{t:.2f}" for t in top))
    if {"fp32", "bf16"} <= stats.keys():
        (m1, s1, n1), (m2, s2, n2) = stats["fp32"], stats["bf16"]
        pooled = math.sqrt(((n1 - 1) * s1 ** 2 + (n2 - 1) * s2 ** 2) / max(1, n1 + n2 - 2))
        ok = abs(m2 - m1) <= pooled
        p = welch_p(tops["fp32"], tops["bf16"]) if min(n1, n2) > 1 else float("nan")
        print(f"bf16 − fp32 = {m2 - m1:+.2f} points; pooled std {pooled:.2f}; Welch p {p:.2f}: "
              f"{'within' if ok else 'NOT within'} one pooled std")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/precision_accuracy")
    runs: dict[str, dict[int, dict]] = {}
    for p in sorted(out.glob("*-seed*/summary.json")):
        name, _, seed = p.parent.name.partition("-seed")
        runs.setdefault(name, {})[int(seed)] = json.loads(p.read_text())
    table(runs, [0, 1, 2], "seeds 0-2 (the issue's check)")
    every = sorted({s for by_seed in runs.values() for s in by_seed})
    if every != [0, 1, 2]:
        print()
        table(runs, every, f"seeds {', '.join(map(str, every))} (all that ran)")


if __name__ == "__main__":
    main()
