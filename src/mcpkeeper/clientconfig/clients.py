"""The MCP clients mcpkeeper can configure, and the entry each one needs for a workload.

Two kinds of entries:

* **spawn** (Claude Desktop): the client starts a command and speaks MCP on its pipes:
  ``mcpkeeper connect NAME`` by its absolute path (:func:`spawn_command`), because
  desktop apps start with a minimal ``PATH`` where a pipx, Homebrew or venv install is
  not found; ``connect`` starts the daemon and the workload if needed and sends the
  client token itself;
* **url** (Claude Code, Cursor, VS Code, Windsurf): the workload's local URL, each in the
  client's own spelling (``url`` + ``type: http``, ``url``, ``serverUrl``), with the
  client token as an ``Authorization`` header when the workload requires it. A VS Code
  *workspace* file is often committed to git, so there the header refers to a VS Code
  input (``${input:…}``, asked once and kept in VS Code's secret storage) instead of
  holding the token.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = [
    "CLIENTS",
    "TOKEN_INPUT_ID",
    "ClientKind",
    "Target",
    "desired_entry",
    "entry_target",
    "spawn_command",
    "token_input",
]

#: The id of the VS Code input that holds the client token in a workspace file.
TOKEN_INPUT_ID = "mcpkeeper-client-token"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class ClientKind:
    """One supported client: its id (``--client``), name, and the shape of its config."""

    id: str
    label: str
    #: The object holding the servers, from the file's root.
    root: tuple[str, ...]
    style: Literal["spawn", "url"]
    url_key: str = "url"
    #: The ``type`` a URL entry declares (VS Code and Claude Code need ``http``).
    http_type: str | None = None
    #: Installed only when asked for (``--client``), never picked by default.
    explicit_only: bool = False


CLIENTS: dict[str, ClientKind] = {
    kind.id: kind
    for kind in (
        ClientKind("claude-desktop", "Claude Desktop", ("mcpServers",), "spawn"),
        ClientKind("claude-code", "Claude Code", ("mcpServers",), "url", http_type="http"),
        ClientKind("cursor", "Cursor", ("mcpServers",), "url"),
        ClientKind("vscode", "VS Code", ("servers",), "url", http_type="http"),
        ClientKind("vscode-workspace", "VS Code (workspace)", ("servers",), "url", "url", "http", True),
        ClientKind("windsurf", "Windsurf", ("mcpServers",), "url", url_key="serverUrl"),
    )
}


@dataclass(frozen=True, slots=True)
class Target:
    """What a client entry points at: one workload."""

    name: str
    url: str
    #: The spawn command's first words (``[/abs/mcpkeeper]`` or ``[/abs/python, -m, mcpkeeper]``).
    command: tuple[str, ...]
    client_token: str | None = None
    #: Environment for a spawned ``connect`` (``MCPKEEPER_HOME`` when it is not the default).
    env: Mapping[str, str] = field(default_factory=dict)


def spawn_command(executable: str | None = None, *, system: str = sys.platform) -> tuple[str, ...]:
    """The absolute command that starts this installation of mcpkeeper.

    The console script beside the interpreter when there is one (pipx, Homebrew, a venv),
    else ``python -m mcpkeeper`` with this interpreter. ``sys.executable`` is made absolute
    but not resolved: in a venv it is a link to the base interpreter, and resolving it
    would leave the venv (and its site-packages) behind.
    """
    python = os.path.abspath(executable or sys.executable)
    script = Path(python).with_name("mcpkeeper.exe" if system == "win32" else "mcpkeeper")
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return (python, "-m", "mcpkeeper")


def desired_entry(kind: ClientKind, target: Target) -> dict[str, Any]:
    """The server entry ``kind`` needs for ``target``, in the client's own format."""
    if kind.style == "spawn":
        entry: dict[str, Any] = {
            "command": target.command[0],
            "args": [*target.command[1:], "connect", target.name],
        }
        if target.env:
            entry["env"] = dict(target.env)
        return entry
    entry = {"type": kind.http_type} if kind.http_type else {}
    entry[kind.url_key] = target.url
    if target.client_token is not None:
        secret = f"${{input:{TOKEN_INPUT_ID}}}" if kind.explicit_only else target.client_token
        entry["headers"] = {"Authorization": f"Bearer {secret}"}
    return entry


def token_input(token_file: Path) -> dict[str, Any]:
    """The VS Code input a workspace entry's header refers to (VS Code asks for it once)."""
    return {
        "type": "promptString",
        "id": TOKEN_INPUT_ID,
        "description": f"mcpkeeper client token (the contents of {token_file})",
        "password": True,
    }


def entry_target(entry: object, local_urls: Mapping[str, str]) -> tuple[str, str] | None:
    """``(kind, what)`` when ``entry`` runs through mcpkeeper, else None.

    ``kind`` is ``workload`` (``what`` is its name: a local URL of ``local_urls``, or a
    ``connect NAME`` command), ``proxy`` (``what`` is the remote URL of a
    ``mcpkeeper proxy URL`` command) or ``mcp-remote`` (an entry mcpkeeper could replace).
    """
    if not isinstance(entry, dict):
        return None
    for key in ("url", "serverUrl"):
        url = entry.get(key)
        if isinstance(url, str) and url in local_urls:
            return "workload", local_urls[url]
    command = entry.get("command")
    args = entry.get("args")
    if not isinstance(command, str) or not isinstance(args, list):
        return None
    words = [command, *(str(arg) for arg in args)]
    if _runs_mcpkeeper(words):
        for verb in ("connect", "proxy"):
            if verb in words and words.index(verb) + 1 < len(words):
                return ("workload" if verb == "connect" else "proxy"), words[words.index(verb) + 1]
    remote = next((w for w in words if w.startswith(("http://", "https://"))), None)
    if remote is not None and any(_basename(w).startswith("mcp-remote") for w in words):
        return "mcp-remote", remote
    return None


def is_local_url(url: object) -> bool:
    """A loopback http URL (what a workload's local URL looks like)."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


def _basename(word: str) -> str:
    """The last component of a POSIX or Windows path (configs may come from either)."""
    return word.replace("\\", "/").rsplit("/", 1)[-1]


def _runs_mcpkeeper(words: list[str]) -> bool:
    first = _basename(words[0]).lower()
    if first.startswith("mcpkeeper"):
        return True
    return (
        "-m" in words and words.index("-m") + 1 < len(words) and words[words.index("-m") + 1] == "mcpkeeper"
    )
