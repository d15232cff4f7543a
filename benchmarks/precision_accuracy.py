"""Tabulate benchmarks/precision_accuracy.sh: test top-1 of ResNet-20 (Fashion-MNIST, 10 epochs
on 25% of the images) in fp32 NCHW and in bf16 + channels_last, 3 seeds each; the bf16 mean
must lie within one pooled standard deviation of the fp32 mean.

Run: .venv/bin/python benchmarks/precision_accuracy.py [OUT=runs/precision_accuracy]
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/precision_accuracy")
    runs: dict[str, list[dict]] = {}
    for p in sorted(out.glob("*-seed*/summary.json")):
        s = json.loads(p.read_text())
        runs.setdefault(p.parent.name.split("-")[0], []).append(s)
    stats = {}
    print(f"{'path':<22}{'seeds':>6}{'top-1 % (mean ± std)':>24}{'s/run':>8}")
    for name, rows in runs.items():
        top = [100 * r["top1"] for r in rows]
        sec = statistics.fmean(r["seconds"] for r in rows)
        std = statistics.stdev(top) if len(top) > 1 else 0.0
        stats[name] = (statistics.fmean(top), std, len(top))
        layout = "channels_last" if rows[0].get("channels_last") else "NCHW"
        print(f"{rows[0]['precision'] + ' ' + layout:<22}{len(top):>6}"
              f"{stats[name][0]:>15.2f} ± {std:.2f}{sec:>8.0f}   "
              + ", ".join(f"{t:.2f}" for t in top))
    if {"fp32", "bf16"} <= stats.keys():
        (m1, s1, n1), (m2, s2, n2) = stats["fp32"], stats["bf16"]
        pooled = math.sqrt(((n1 - 1) * s1 ** 2 + (n2 - 1) * s2 ** 2) / max(1, n1 + n2 - 2))
        ok = abs(m2 - m1) <= pooled
        print(f"bf16 − fp32 = {m2 - m1:+.2f} points; pooled std {pooled:.2f}: "
              f"{'within' if ok else 'NOT within'} one pooled std")


if __name__ == "__main__":
    main()
