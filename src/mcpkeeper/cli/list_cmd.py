"""``mcpkeeper list``: every workload, its status and why, from disk (daemon up or not)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mcpkeeper.cli.overview import WorkloadRow, load_rows
from mcpkeeper.cli.render import humanise_age, printable, status_style
from mcpkeeper.state.paths import state_home

__all__ = ["OutputFormat", "list_workloads", "print_json"]


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


FormatOpt = Annotated[
    OutputFormat, typer.Option("--format", "-o", help="table for people, json for scripts.")
]


def list_workloads(
    show_all: Annotated[bool, typer.Option("--all", "-a", help="Include stopped workloads.")] = False,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """List workloads: status, remote, local URL, since when and why (never a token)."""
    home = state_home()
    rows = [row for row in load_rows(home) if show_all or row.shown_by_default]
    if output is OutputFormat.JSON:
        print_json([row.to_json() for row in rows])
    else:
        _print_table(rows, _aggregated_endpoint(home) if rows else None)


def _aggregated_endpoint(home: Path) -> str | None:
    """The daemon's vMCP line for the table's footer, when a live daemon serves or tried to."""
    from mcpkeeper.cli.foreground import pid_alive
    from mcpkeeper.vmcp.runfile import read_vmcp_info

    info = read_vmcp_info(home)
    if info is None or not pid_alive(info.pid):
        return None
    if info.url is not None:
        return f"All tools in one MCP endpoint: {info.url}"
    return f"Aggregated endpoint not served: {info.error}" if info.error else None


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _print_table(rows: list[WorkloadRow], footer: str | None = None) -> None:
    """The table fitted to the terminal (:mod:`.list_layout`); piped, nothing is shortened."""
    from rich.console import Console
    from rich.text import Text

    from mcpkeeper.cli.list_layout import ListRow, table_lines

    terminal = sys.stdout.isatty()
    console = Console(highlight=False, soft_wrap=True)
    if not rows:
        console.print("No workloads. Start one with: mcpkeeper run URL", style="dim")
        return
    now = datetime.now(UTC)
    shown = [
        ListRow(
            name=printable(row.name),
            status=row.status,
            status_style=status_style(row.status),
            remote=printable(row.remote_url or "-"),
            local_url=row.url or "-",
            since=humanise_age(row.updated_at, now),
            reason=printable(row.status_context),
        )
        for row in rows
    ]
    for line in table_lines(shown, console.width if terminal else None):
        # Text, not str: a reason like "[bold]" must print as written, not as markup.
        console.print(Text.assemble(*((text, style or "") for text, style in line)))
    if footer:
        console.print(footer, style="dim")
