"""The ``mcpkeeper`` command line (typer + rich); ``main`` is the console-script entry point."""

from mcpkeeper.cli.app import app, main

__all__ = ["app", "main"]
