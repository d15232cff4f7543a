"""MorphNet vs uniform widths at equal MACs on Fashion-MNIST (ResNet-20, 28 px).

1. a MorphNet search (structure learning on a share of the training images);
2. the uniform widths at the same MACs target;
3. both trained from scratch with the same recipe, for several seeds;
4. a table: mean ± std test top-1 of both, and the search's training MACs as a fraction of one
   training run.

Runs unattended and prints the table (and writes it as JSON with --out). The full experiment:

    python examples/morphnet_fmnist.py --train-epochs 30 --seeds 3

A quick smoke version (minutes on a 2-core CPU):

    python examples/morphnet_fmnist.py --search-epochs 1 --train-epochs 1 --fraction 0.2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "specs" / "resnet20_fmnist.yaml"))
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--target-macs", default="1.0x", help="multiple of the spec's MACs or number")
    p.add_argument("--search-epochs", type=int, default=2)
    p.add_argument("--search-fraction", type=float, default=0.2)
    p.add_argument("--strength", type=float, default=None, help="MorphNet strength (default: "
                   "the method's)")
    p.add_argument("--train-epochs", type=int, default=10)
    p.add_argument("--fraction", type=float, default=1.0, help="share of train images to train on")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--search-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)

    import wtc
    from wtc.optimizers import resolve_target
    from wtc.trainer import TrainConfig, set_process_threads, train

    set_process_threads(args.threads)  # this script owns its process
    t_all = time.perf_counter()
    graph = wtc.compile_spec(wtc.load_spec(args.spec))
    target = resolve_target(graph, args.target_macs)
    data = {"data": args.data, "batch_size": args.batch_size}
    if args.data_root:
        data["data_root"] = args.data_root
    settings = {} if args.strength is None else {"strength": args.strength}

    print(f"[1/3] morphnet search: {args.search_epochs} epochs on {args.search_fraction:g} of "
          f"{args.data}, target {target:,} MACs", flush=True)
    found = wtc.search(graph, "morphnet", target_macs=target, settings=settings, data=data,
                       seed=args.search_seed, epochs=args.search_epochs,
                       fraction=args.search_fraction, threads=args.threads, progress="plain")
    uniform = wtc.uniform_widths(graph, target_macs=target)
    print(f"      {found.seconds:.0f} s, {found.train_macs:.3e} training MACs; alive MACs "
          f"{found.details['alive_macs'] / wtc.count_macs(graph):.2f} of the base", flush=True)

    runs: dict[str, list[dict]] = {"uniform": [], "morphnet": []}
    for i, seed in enumerate(range(args.seeds)):
        for name, widths in (("uniform", uniform), ("morphnet", found.widths)):
            print(f"[2/3] train {name} seed {seed} ({i + 1}/{args.seeds}): "
                  f"{args.train_epochs} epochs", flush=True)
            cfg = TrainConfig(data=args.data, data_root=args.data_root, epochs=args.train_epochs,
                              fraction=args.fraction, lr=args.lr, batch_size=args.batch_size,
                              seed=seed, threads=args.threads, out=None)
            res = train(graph, widths, cfg)
            runs[name].append({"seed": seed, "top1": res.summary["top1"],
                               "train_macs": res.summary["train_macs"],
                               "seconds": res.summary["seconds"]})
            print(f"      top-1 {100 * res.summary['top1']:.2f}%  "
                  f"({res.summary['seconds']:.0f} s)", flush=True)

    one_run = statistics.mean(r["train_macs"] for r in runs["uniform"])
    rows = []
    for name, widths in (("uniform", uniform), ("morphnet", found.widths)):
        top = [100 * r["top1"] for r in runs[name]]
        rows.append({"method": name, "macs": widths.macs, "params": wtc.count_params(graph, widths),
                     "top1_mean": statistics.mean(top),
                     "top1_std": statistics.stdev(top) if len(top) > 1 else 0.0,
                     "seeds": len(top), "top1": top})
    result = {"spec": graph.spec.name, "data": args.data, "target_macs": target,
              "search": {"epochs": args.search_epochs, "fraction": args.search_fraction,
                         "train_macs": found.train_macs, "seconds": found.seconds,
                         "settings": found.settings, "widths": found.groups,
                         "alive": found.details["alive"]},
              "train": {"epochs": args.train_epochs, "fraction": args.fraction, "lr": args.lr},
              "uniform_widths": uniform.groups, "rows": rows,
              "search_over_one_training_run": found.train_macs / one_run,
              "wall_seconds": time.perf_counter() - t_all}

    print("\n[3/3] results")
    print(f"{'method':10s} {'MACs':>12s} {'params':>9s} {'top-1 (%)':>16s} seeds")
    for r in rows:
        print(f"{r['method']:10s} {r['macs']:>12,} {r['params']:>9,} "
              f"{r['top1_mean']:>8.2f} ± {r['top1_std']:<5.2f} {r['seeds']:>5d}")
    print(f"search cost: {found.train_macs:.3e} training MACs = "
          f"{result['search_over_one_training_run']:.3f} of one training run "
          f"({one_run:.3e}); wall time {result['wall_seconds']:.0f} s")
    print(f"{'group':24s} {'base':>5s} {'uniform':>8s} {'morphnet':>9s}")
    for g in graph.free_groups:
        print(f"{g:24s} {graph.groups[g].base:>5d} {uniform.groups[g]:>8d} "
              f"{found.groups[g]:>9d}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
