"""`wtc import` on torchvision models: the round-trip table and the import time.

For each model (random init, eval mode): parameters and MACs of the imported spec against the
module's (MACs = torch FlopCounter FLOPs / 2 at the resolution given), the largest logit
difference of the built network with the imported weights on a fresh random input, and the
import time (trace + shapes + spec + build + the logits check) as seconds and as a ratio to
one forward pass of the module in the same process (the ratio is what to compare across
machines). Run: .venv/bin/python benchmarks/bench_import.py [RESOLUTION] [model,model,...]
"""

from __future__ import annotations

import sys
import time

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import wtc
from wtc.graph import compile_spec, count_macs, count_params
from wtc.importer import import_model

MODELS = ["resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "mobilenet_v2",
          "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_x_400mf",
          "regnet_y_400mf", "shufflenet_v2_x1_0", "mnasnet1_0", "densenet121", "vgg11_bn",
          "squeezenet1_1", "convnext_tiny"]


def row(name: str, res: int) -> str:
    torch.manual_seed(0)
    module = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, res, res)
    with torch.no_grad():
        module(x)  # warm up
        t = time.perf_counter()
        module(x)
        forward = time.perf_counter() - t
    t = time.perf_counter()
    imported = import_model(module, x, name=name)
    seconds = time.perf_counter() - t
    graph = compile_spec(imported.spec)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    model = wtc.build_model(graph, init=False).eval()
    model.load_state_dict(imported.state_dict)
    probe = torch.randn(2, 3, res, res)
    with torch.no_grad():
        diff = float((model(probe) - module(probe)).abs().max())
    params, ref_params = count_params(graph), sum(p.numel() for p in module.parameters())
    macs, ref_macs = count_macs(graph), counter.get_total_flops() // 2
    ok = "yes" if params == ref_params and macs == ref_macs and diff < 1e-4 else "NO"
    return (f"| {name} | {params:,} | {macs:,} | {diff:.1e} | {ok} | {seconds:.2f} s "
            f"({seconds / forward:.0f}x a forward) | {len(imported.spec.stages)} |")


def main() -> None:
    res = int(sys.argv[1]) if len(sys.argv) > 1 else 224
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else MODELS
    print(f"resolution {res} px, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| model | params | MACs | max logit diff | exact | import time | stages |")
    print("|---|---:|---:|---:|---|---|---:|")
    for name in names:
        print(row(name, res), flush=True)


if __name__ == "__main__":
    main()
