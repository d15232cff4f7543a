"""`wtc import`: a PyTorch module (any importable callable) → a spec and its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wtc.cli.common import handle_errors, out, print_json
from wtc.cli.params import Commands, JsonOpt

app = Commands()


@app.command("import")
@handle_errors
def import_cmd(
    target: Annotated[str, typer.Argument(help="MODULE:CALLABLE or FILE.py:CALLABLE, e.g. "
                                          "torchvision.models:resnet50", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="the spec to write (YAML)",
                                         show_default=False)],
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="also write the module's weights as a checkpoint of the built "
        "network (for --checkpoint / --init-from)")] = None,
    input_shape: Annotated[str, typer.Option("--input", help="example input CxHxW")
                           ] = "3x224x224",
    kwargs: Annotated[str | None, typer.Option(
        "--kwargs", help="JSON keyword arguments for the callable, e.g. "
        "'{\"num_classes\": 10}'")] = None,
    name: Annotated[str | None, typer.Option("--name", help="spec name (default: the "
                                             "callable's name)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the callable's random "
                                      "initialisation and the example input")] = 0,
    tracer: Annotated[str, typer.Option("--tracer", help="auto (torch.fx, else torch.export) | "
                                        "fx | export")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Import a PyTorch module: trace it, write an ordinary spec (stages recovered from the
    module hierarchy), check the built network gives the module's logits."""
    import torch

    from wtc.atomic import atomic_write, atomic_write_text
    from wtc.graph import compile_spec, count_macs, count_params
    from wtc.importer import import_model
    from wtc.importer.source import make_module, parse_input

    shape = parse_input(input_shape)
    for path in (output, weights):
        if path is not None and not path.parent.exists():
            from wtc.errors import ConfigError

            raise ConfigError(f"cannot write {path}: folder {path.parent} does not exist")
    torch.manual_seed(seed)
    module = make_module(target, kwargs)
    spec_name = name or target.rpartition(":")[2].replace(".", "_")
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(seed))
    imported = import_model(module, x, name=spec_name, source=target, tracer=tracer)
    graph = compile_spec(imported.spec)
    if weights is not None:
        ckpt = {"model": imported.state_dict, "spec_hash": imported.spec.structural_hash,
                "spec_name": imported.spec.name, "source": target}
        atomic_write(weights, lambda f: torch.save(ckpt, f))
    atomic_write_text(output, imported.yaml)
    macs, params = count_macs(graph), count_params(graph)
    if as_json:
        print_json({"spec": imported.spec.name, "output": str(output), "weights":
                    str(weights) if weights else None, "hash": imported.spec.structural_hash,
                    "macs": macs, "params": params, "max_abs_diff": imported.max_abs_diff,
                    "stages": [[s.name, s.depth] for s in imported.spec.stages]})
        return
    stages = ", ".join(f"{s.name} x{s.depth}" for s in imported.spec.stages)
    out.print(f"[green]wrote[/green] {output}: '{imported.spec.name}' from {target}, "
              f"{params:,} parameters, {macs:,} MACs at {shape[1]} px, stages {stages}; "
              f"logits match the module (max abs diff {imported.max_abs_diff:.2g})"
              + (f"; weights in {weights}" if weights else ""), soft_wrap=True)
