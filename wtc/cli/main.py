"""`wtc`: the command line. One file per command group, each with its module-level app
(`app = Commands()`, `wtc.cli.params`); this is the one place they are put together."""

from __future__ import annotations

import typer

from wtc.cli import experiment, export, importer, plot, profile, search, spec_cmds, train, transfer

app = typer.Typer(
    name="wtc",
    help="wtc, a width compiler for CNNs: search widths on a cheap proxy, transfer them to the "
    "target, train and export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# in the order `wtc --help` lists them
COMMAND_MODULES = (spec_cmds, search, transfer, train, export, importer, plot, experiment,
                   profile)
for module in COMMAND_MODULES:
    app.add_typer(module.app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
