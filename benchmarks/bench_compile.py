"""Compile time (YAML → stage graph) of the new family specs, and `wtc validate` on 1 MB specs.

1. For each spec of issue 12: `load_spec` + `compile_spec` (read, parse, validate, compile,
   width groups), median of repeats, in milliseconds; the largest (most ops) is marked.
2. `wtc validate` on specs of 1 MB (the default file size limit): the largest new spec padded
   with comments to 999,999 bytes (valid), and 1 MB of dense YAML (refused at the node limit).
   Timed in-process (the library call the command makes) and as a fresh `wtc validate`
   process (interpreter start-up and imports included).
Run: .venv/bin/python benchmarks/bench_compile.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wtc
from wtc.errors import SpecError
from wtc.graph import check_memory

ROOT = Path(__file__).resolve().parents[1]
NEW = ["resnext50", "regnetx_400mf", "regnety_400mf", "shufflenetv2", "shufflenetv2_fmnist",
       "efficientnet_b0", "convnext_tiny"]
ONE_MB = 1_000_000


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def validate(path: Path) -> str:
    """What `wtc validate` does, as a library call: the outcome in a word."""
    try:
        check_memory(wtc.compile_spec(wtc.load_spec(path)))
        return "ok"
    except SpecError as e:
        return f"refused ({e.reason[:40]}…)"


def process_ms(path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wtc.cli.main", "validate", str(path)],
                       capture_output=True, check=False)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main(repeats: int = 15) -> None:
    print(f"{'spec':<22}{'ops':>6}{'groups':>8}{'load+compile ms':>17}")
    sizes = {}
    for name in NEW:
        path = ROOT / "specs" / f"{name}.yaml"
        graph = wtc.compile_spec(wtc.load_spec(path))
        sizes[name] = len(graph.order)
        ms = median_ms(lambda p=path: wtc.compile_spec(wtc.load_spec(p)), repeats)
        print(f"{name:<22}{len(graph.order):>6}{len(graph.free_groups):>8}{ms:>17.1f}")
    largest = max(sizes, key=lambda n: sizes[n])
    print(f"largest new spec: {largest} ({sizes[largest]} ops)\n")

    with tempfile.TemporaryDirectory() as tmp:
        base = (ROOT / "specs" / f"{largest}.yaml").read_text()
        padded = Path(tmp) / "padded_1mb.yaml"
        line = "# " + "x" * 97 + "\n"
        pad = line * ((ONE_MB - 1 - len(base)) // len(line))
        padded.write_text(base + pad + "#" * (ONE_MB - 1 - len(base) - len(pad) - 1) + "\n")
        dense = Path(tmp) / "dense_1mb.yaml"
        row = "- {a: 1, b: [1, 2, 3]}\n"
        dense.write_text("x:\n" + row * ((ONE_MB - 3) // len(row)))
        print(f"{'1 MB spec':<36}{'bytes':>10}{'in-process ms':>15}{'process ms':>12}  outcome")
        for label, path in (("largest new spec + comments", padded),
                            ("dense YAML (over the node limit)", dense)):
            ms = median_ms(lambda p=path: validate(p), repeats)
            proc = process_ms(path, max(3, repeats // 3))
            print(f"{label:<36}{path.stat().st_size:>10,}{ms:>15.1f}{proc:>12.0f}  "
                  f"{validate(path)}")


if __name__ == "__main__":
    main()
