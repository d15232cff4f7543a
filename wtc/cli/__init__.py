"""The command line: thin typer commands that call one library function each and render with rich."""
