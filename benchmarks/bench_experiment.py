"""`wtc experiment`: what the cost model projects, and what the runner itself costs.

1. Dry-run overhead ratios (direct search MACs ÷ proxy search MACs) of the Fashion-MNIST plan
   (examples/width_transfer_fmnist.yaml) and of the same proxies on the ImageNet ResNet-18
   and MobileNetV2 specs (half width at half resolution, one block per stage, 10% of the
   images, all combined): the cost model's answer to "how close to 320x".
2. Scheduling overhead: N no-op units on the local backend (in-process and a 2-worker pool;
   also Ray with --ray), wall time per unit.
3. Wall time follows MACs (--search): a MorphNet search on Fashion-MNIST ResNet-20 (direct:
   20% of the images) against the cheapest proxy (half width, 14 px, one block per stage, 5%
   of those images), in one warm process (as in an experiment's worker) and each in a fresh
   process (as `wtc search` runs): training-MACs reduction beside wall-time reduction.

Run: .venv/bin/python benchmarks/bench_experiment.py [--units 20] [--ray] [--search]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import yaml

from wtc.experiment import load_plan, noop_units, project, resolve_plan, run_experiment

ROOT = Path(__file__).resolve().parents[1]
FMNIST = ROOT / "examples" / "width_transfer_fmnist.yaml"
IMAGENET = {"data": "imagefolder", "data_root": "/data/imagenet", "train_images": 1_281_167,
            "batch_size": 256}


def imagenet_plan(spec: str, depths: list[int]) -> dict:
    """The Fashion-MNIST plan's proxies and settings on an ImageNet spec (data absent)."""
    plan = copy.deepcopy(yaml.safe_load(FMNIST.read_text()))
    plan["name"] = f"width_transfer_{Path(spec).stem}"
    plan["target"]["spec"] = str(ROOT / "specs" / spec)
    plan["data"] = dict(IMAGENET)
    plan["proxies"] = {
        "half_width_112px": {"width": 0.5, "resolution": 112},
        "one_block": {"depths": depths},
        "data10": {"fraction": 0.1},
        "all": {"width": 0.5, "resolution": 112, "depths": depths, "fraction": 0.1},
    }
    return plan


def dry_runs() -> None:
    plans = [("resnet20_fmnist (Fashion-MNIST)", load_plan(FMNIST)),
             ("resnet18 (ImageNet)", resolve_plan(imagenet_plan("resnet18.yaml", [1] * 4))),
             ("mobilenetv2 (ImageNet)", resolve_plan(imagenet_plan("mobilenetv2.yaml",
                                                                   [1] * 7)))]
    print("dry-run overhead ratios (direct search MACs / proxy search MACs), morphnet:")
    for label, plan in plans:
        t0 = time.perf_counter()
        proj = project(plan)
        ms = 1000 * (time.perf_counter() - t0)
        ratios = {p.unit.split("/")[-1]: p.ratio for p in proj
                  if p.ratio and p.unit.startswith("search/morphnet/")}
        direct = next(p.train_macs for p in proj if p.unit == "search/morphnet/target")
        total = sum(p.train_macs for p in proj)
        shown = ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items())
        print(f"  {label:32s} {shown}  (direct search {direct:.3g} MACs, plan total "
              f"{total:.3g}, projected in {ms:.0f} ms)")


def _timed(n: int, backend: str, jobs: int) -> tuple[float, float]:
    """(seconds to run n no-op units from scratch, seconds of a rerun that skips them all)."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run_experiment(None, d, units=noop_units(n), backend=backend, jobs=jobs,
                             threads=1)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = run_experiment(None, d, units=noop_units(n), backend=backend, jobs=jobs,
                               threads=1)
        skip = time.perf_counter() - t1
    assert len(res.ran) == n and not again.ran
    return wall, skip


def scheduling(n: int, use_ray: bool) -> None:
    """Wall time of n and 2n no-op units (best of 3): the difference over n is the steady
    per-unit cost, the rest is the backend's start-up."""
    print(f"scheduling overhead: {n} and {2 * n} no-op units")
    configs = [("local, jobs 1 (in-process)", "local", 1),
               ("local, jobs 2 (spawned pool)", "local", 2)]
    if use_ray:
        configs.append(("ray, local instance, 2 CPUs", "ray", 2))
    for label, backend, jobs in configs:
        if backend == "ray":  # start Ray once (the backend reuses a running instance)
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            print(f"  (ray.init of a local instance: {time.perf_counter() - t0:.2f} s, not "
                  "counted below)")
        # best of 3 (the machine is shared): n units, then 2n units
        wall, skip = min(_timed(n, backend, jobs) for _ in range(3))
        wall2 = min(_timed(2 * n, backend, jobs)[0] for _ in range(3))
        per_unit = (wall2 - wall) / n
        start = max(0.0, wall - n * per_unit)
        print(f"  {label:30s} {1000 * wall / n:7.1f} ms/unit for {n} units ({wall:.2f} s); "
              f"steady {1000 * per_unit:6.2f} ms/unit + start-up {start:.2f} s; "
              f"a rerun skipping all {n}: {skip:.2f} s")
        if backend == "ray":
            ray.shutdown()


SEARCH = """
import sys, time
t0 = time.perf_counter()
from wtc.graph import compile_spec
from wtc.optimizers import search
from wtc.spec import load_spec
from wtc.trainer import set_process_threads
from wtc.widthtransfer import project_spec
set_process_threads(1)
spec = load_spec(sys.argv[1])
proxy = project_spec(spec, width=0.5, resolution=14, depths=[1, 1, 1], name="proxy")
graph = compile_spec(proxy if sys.argv[2] == "proxy" else spec)
fraction = 0.2 * (0.05 if sys.argv[2] == "proxy" else 1.0)
r = search(graph, "morphnet", target_macs="0.5x", fraction=fraction, threads=1,
           data={"data": "fashion-mnist", "batch_size": 128, "val_split": 0.1})
print(r.train_macs, time.perf_counter() - t0)
"""


def search_walltime() -> None:
    import os
    import subprocess
    import sys

    from wtc.graph import compile_spec
    from wtc.optimizers import search
    from wtc.spec import load_spec
    from wtc.trainer import set_process_threads
    from wtc.widthtransfer import project_spec

    set_process_threads(1)
    spec = load_spec(ROOT / "specs" / "resnet20_fmnist.yaml")
    graphs = {"direct": compile_spec(spec),
              "proxy": compile_spec(project_spec(spec, width=0.5, resolution=14,
                                                 depths=[1, 1, 1], name="proxy"))}
    data = {"data": "fashion-mnist", "batch_size": 128, "val_split": 0.1}
    search(graphs["proxy"], "morphnet", target_macs="0.5x", data=data, fraction=0.01,
           epochs=1, threads=1)  # warm-up: imports, dataset in memory, first kernels
    warm = {}
    for name, g in graphs.items():
        t0 = time.perf_counter()
        r = search(g, "morphnet", target_macs="0.5x", data=data, threads=1,
                   fraction=0.2 * (0.05 if name == "proxy" else 1.0))
        warm[name] = (r.train_macs, time.perf_counter() - t0)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cold = {}
    for name in graphs:
        out = subprocess.run([sys.executable, "-c", SEARCH, str(ROOT / "specs" /
                              "resnet20_fmnist.yaml"), name], capture_output=True, text=True,
                             env=env, check=True).stdout.split()
        cold[name] = (int(out[0]), float(out[1]))
    macs = warm["direct"][0] / warm["proxy"][0]
    print("morphnet search, direct vs cheapest proxy (1 thread):")
    for label, t in (("warm process", warm), ("fresh process", cold)):
        print(f"  {label:14s} direct {t['direct'][1]:6.1f} s, proxy {t['proxy'][1]:5.2f} s: "
              f"wall-time reduction {t['direct'][1] / t['proxy'][1]:6.1f}x against a "
              f"training-MACs reduction of {macs:.0f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, default=20)
    p.add_argument("--ray", action="store_true", help="also time the Ray backend")
    p.add_argument("--search", action="store_true", help="also time direct vs proxy search "
                   "(about 2 minutes)")
    args = p.parse_args()
    dry_runs()
    scheduling(args.units, args.ray)
    if args.search:
        search_walltime()


if __name__ == "__main__":
    main()
