"""Does a latency budget pay (issue 20, item 4, in its cheap form)? Searched widths under a MACs
budget against the same widths re-matched to a latency budget, measured end to end.

The widths are the committed Fashion-MNIST experiment's direct searches (MorphNet, AutoSlim,
DMCP on ResNet-20 at 0.5x MACs, `examples/results/width_transfer_fmnist`), used as they are on
ResNet-20 and transferred onto ResNet-56 (`wtc.transfer`, stacking "last"). On each spec:

    uniform   uniform widths at the MACs target M (0.5x the spec's MACs)
    macs      the searched widths at M (on ResNet-56: transferred with the MACs budget M)
    latency   the searched widths' direction re-matched by one α to the latency L that the
              table predicts for `uniform` (transfer with --cost latency:TABLE)

so `macs` and `latency` have the same shape and differ only in the budget they honour. All
three are measured round-robin (several rounds, the median per network) on the same runtime
and threads as the table. The search's accuracy is not re-measured here (the ledger has the
trained accuracy of `macs` on ResNet-20).
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_latency_budget.py [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import wtc
from wtc.experiment import Ledger
from wtc.graph.latency import LatencyCost, load_table
from wtc.profile import profile_spec, time_network
from wtc.widths import uniform_widths, widths_from_groups
from wtc.widthtransfer import transfer

LEDGER = "examples/results/width_transfer_fmnist"
SOURCE = "specs/resnet20_fmnist.yaml"
TARGETS = ("specs/resnet20_fmnist.yaml", "specs/resnet56_fmnist.yaml")
METHODS = ("morphnet", "autoslim", "dmcp")


def measure_round_robin(graph, named: dict, runtime: str, threads: int, rounds: int) -> dict:
    times: dict[str, list[float]] = {k: [] for k in named}
    for _ in range(rounds):
        for k, groups in named.items():
            times[k].append(time_network(graph, groups, runtime=runtime, threads=threads,
                                         batch=1).median)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default="torch-cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows = {r["unit"]: r for r in Ledger(LEDGER).units()}
    src = wtc.compile_spec(wtc.load_spec(SOURCE))
    searched = {m: widths_from_groups(src, rows[f"search/{m}/target"]["outputs"]["groups"],
                                      method=m) for m in METHODS}
    print(f"runtime {args.runtime}, {args.threads} thread(s), batch 1; measured ms (ratio to "
          "uniform), MACs ratio to uniform")
    print(f"{'spec':<18}{'method':<10}{'uniform ms':>11}{'macs-budget ms':>20}"
          f"{'latency-budget ms':>22}{'MACs ratio (lat)':>18}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in TARGETS:
            g = wtc.compile_spec(wtc.load_spec(path))
            table = Path(tmp) / f"{g.spec.name}.json"
            table.write_text(json.dumps(profile_spec(g, runtime=args.runtime,
                                                     threads=args.threads)))
            model = LatencyCost(load_table(table))
            m_target = round(0.5 * wtc.count_macs(g))
            uni = uniform_widths(g, target_macs=m_target)
            lat_target = model.cost(g, uni.groups)
            named = {"uniform": uni.groups}
            for m, w in searched.items():
                named[f"{m}:macs"] = transfer(w, src, g, target_macs=m_target).widths.groups
                named[f"{m}:lat"] = transfer(w, src, g, target_macs=lat_target,
                                             cost=model).widths.groups
            ms = measure_round_robin(g, named, args.runtime, args.threads, args.rounds)
            u = ms["uniform"]
            for m in METHODS:
                a, b = ms[f"{m}:macs"], ms[f"{m}:lat"]
                macs_ratio = wtc.count_macs(g, named[f"{m}:lat"]) / uni.macs
                print(f"{g.spec.name:<18}{m:<10}{u * 1e3:>11.3f}{a * 1e3:>12.3f} ({a / u:.3f})"
                      f"{b * 1e3:>14.3f} ({b / u:.3f}){macs_ratio:>18.3f}", flush=True)


if __name__ == "__main__":
    main()
