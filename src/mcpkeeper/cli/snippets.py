"""Client configuration snippets printed by ``mcpkeeper run``.

Each MCP client spells its config differently; printing the exact JSON to paste is the
difference between "it works" and an evening with three documentation sites.
Stdio-only clients (Claude Desktop's config file) get a ``mcpkeeper connect NAME``
command; clients that speak streamable HTTP get the local URL directly.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["client_snippets", "connect_command"]


def connect_command() -> str:
    """How a client should spawn us: ``mcpkeeper`` when it is on PATH, else its absolute path.

    Desktop apps start commands with a minimal PATH; a bare name that our own shell found
    may be invisible to them, so when we are not on PATH we hand out the full path.
    """
    if shutil.which("mcpkeeper"):
        return "mcpkeeper"
    beside_python = Path(sys.executable).with_name("mcpkeeper")
    return str(beside_python) if beside_python.exists() else "mcpkeeper"


def client_snippets(
    name: str, url: str, *, command: str = "mcpkeeper", client_token: str | None = None
) -> dict[str, dict[str, Any]]:
    """The config block for each client, keyed by a human label.

    With a ``client_token`` (the workload requires it), the HTTP clients get it as an
    ``Authorization`` header, which both support; ``mcpkeeper connect`` reads it itself.
    """
    http: dict[str, Any] = {"url": url}
    if client_token is not None:
        http["headers"] = {"Authorization": f"Bearer {client_token}"}
    return {
        "Claude Desktop": {"mcpServers": {name: {"command": command, "args": ["connect", name]}}},
        "Cursor": {"mcpServers": {name: dict(http)}},
        "VS Code": {"servers": {name: {"type": "http", **http}}},
    }
