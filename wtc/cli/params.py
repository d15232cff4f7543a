"""What several commands share on the command line: the app every command module defines its
commands on, and the `Annotated` options that mean the same everywhere (one help, one default).

Help that lists a registry's names says `{methods}`, `{datasets}`, `{costs}`, `{runtimes}` or
`{backends}`; the names are read from the registry when the help is shown, so a new method or
dataset appears there by itself and `wtc validate` never imports torch to list datasets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperCommand


def _methods() -> list[str]:
    from wtc.optimizers import OPTIMIZERS

    return OPTIMIZERS.names()


def _datasets() -> list[str]:
    from wtc.data import DATASETS

    return DATASETS.names()


def _costs() -> list[str]:
    from wtc.graph.cost_registry import cost_forms

    return cost_forms()


def _runtimes() -> list[str]:
    from wtc.profile.runtimes import RUNTIMES

    return RUNTIMES.names()


def _backends() -> list[str]:
    from wtc.experiment.backends import BACKENDS

    return BACKENDS.names()


# placeholder in help text -> the registry names it stands for
REGISTRY_NAMES: dict[str, Callable[[], list[str]]] = {
    "methods": _methods, "datasets": _datasets, "costs": _costs, "runtimes": _runtimes,
    "backends": _backends,
}
_PLACEHOLDER = re.compile(r"\{(" + "|".join(REGISTRY_NAMES) + r")\}")


def names_list(key: str) -> str:
    """A registry's names as help text writes them: 'a | b | c'."""
    return " | ".join(REGISTRY_NAMES[key]())


def fill_help(text: str) -> str:
    """Help text with each `{registry}` placeholder replaced by that registry's names."""
    return _PLACEHOLDER.sub(lambda m: names_list(m.group(1)), text)


class RegistryHelp(TyperCommand):
    """A command whose help fills in the registries' names when it is shown."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in self.params:
            help_text = getattr(param, "help", None)
            if help_text:
                param.help = fill_help(help_text)  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


class Commands(typer.Typer):
    """The module-level app of one command module (`app = Commands()`); `wtc.cli.main` adds
    every module's app to the `wtc` app, so its commands are top-level commands."""

    def command(self, name: str | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("cls", RegistryHelp)
        return super().command(name, **kwargs)


# the options and arguments several commands take, alike in each
SpecArg = Annotated[Path, typer.Argument(help="architecture spec (YAML)", show_default=False)]
WidthsOpt = Annotated[Path | None, typer.Option(
    "--widths", "-w", help="widths.json of SPEC (default: the spec's base widths)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
DataOpt = Annotated[str | None, typer.Option("--data", help="dataset: {datasets}")]
DataRootOpt = Annotated[str | None, typer.Option("--data-root", help="dataset directory")]
EpochsOpt = Annotated[int | None, typer.Option(
    "--epochs", "-e", help="training epochs (default: --config's, else the method's or 1)")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", "-b", help="images per batch")]
FractionOpt = Annotated[float | None, typer.Option(
    "--fraction", help="share of the training images (stratified)")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="seed of the data split, the initialisation and the augmentation")]
ResolutionOpt = Annotated[int | None, typer.Option(
    "--resolution", help="input resolution (default: the spec's)")]
DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="auto | cpu | cuda (auto: cuda when there is one)")]
CostOpt = Annotated[str | None, typer.Option(
    "--cost", help="what the target is counted in: {costs} (default macs; a TABLE is made by "
    "`wtc profile`, TABLE@RUNTIME also checks its runtime)")]
PrecisionOpt = Annotated[str | None, typer.Option(
    "--precision", help="auto | fp32 | bf16 | fp16 (auto: bf16 where the CPU or GPU runs it "
    "natively, else fp32)")]
ChannelsLastOpt = Annotated[str | None, typer.Option(
    "--channels-last", help="auto | on | off (NHWC tensors; auto: on for CPU and CUDA)")]
