"""Client configuration snippets printed by ``mcpkeeper run``: what ``mcpkeeper client setup`` writes.

Each MCP client spells its config differently; the entries come from
:func:`mcpkeeper.clientconfig.clients.desired_entry`, so the JSON printed here is exactly
what ``client setup`` would write into that client's file. Stdio-only clients (Claude
Desktop) get ``mcpkeeper connect NAME`` by its absolute path; the others get the local URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mcpkeeper.clientconfig.clients import CLIENTS, Target, desired_entry

__all__ = ["client_snippets"]

#: Label printed -> client id, in the order shown (the workspace file is `client setup`'s business).
_SHOWN = {
    "Claude Desktop": "claude-desktop",
    "Claude Code": "claude-code",
    "Cursor": "cursor",
    "VS Code": "vscode",
    "Windsurf": "windsurf",
}


def client_snippets(
    name: str,
    url: str,
    *,
    command: str | Sequence[str] = "mcpkeeper",
    client_token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The config block for each client, keyed by a human label.

    With a ``client_token`` (the workload requires it), the HTTP clients get it as an
    ``Authorization`` header; ``mcpkeeper connect`` reads it itself.
    """
    words = (command,) if isinstance(command, str) else tuple(command)
    target = Target(name, url, words, client_token, dict(env or {}))
    snippets = {}
    for label, client in _SHOWN.items():
        kind = CLIENTS[client]
        wrapped: dict[str, Any] = {name: desired_entry(kind, target)}
        for key in reversed(kind.root):
            wrapped = {key: wrapped}
        snippets[label] = wrapped
    return snippets
