"""The command line: thin typer commands, each calling one library function, rendered by rich."""
