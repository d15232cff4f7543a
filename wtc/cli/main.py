"""`wtc`: the command line. One file per command group; each registers its commands here."""

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

for module in (spec_cmds, search, transfer, train, export, importer, plot, experiment, profile):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
