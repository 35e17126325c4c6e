"""Where each MCP client keeps its server list, per platform: pure functions of (home, env, cwd).

Checked against each client's documentation (see the README's table):

=================  =====================================================================
claude-desktop     macOS ``~/Library/Application Support/Claude/claude_desktop_config.json``;
                   Windows ``%APPDATA%\\Claude\\claude_desktop_config.json``; Linux (no official
                   build; the community builds use) ``$XDG_CONFIG_HOME/Claude/…``
claude-code        ``~/.claude.json`` on every platform (``$CLAUDE_CONFIG_DIR/.claude.json``
                   when that is set), user scope: the top-level ``mcpServers``
cursor             ``~/.cursor/mcp.json`` on every platform
vscode             the user profile's ``mcp.json``: ``~/.config/Code/User`` (Linux, or
                   ``$XDG_CONFIG_HOME/Code/User``), ``~/Library/Application Support/Code/User``
                   (macOS), ``%APPDATA%\\Code\\User`` (Windows)
vscode-workspace   ``<workspace>/.vscode/mcp.json``
windsurf           ``~/.codeium/windsurf/mcp_config.json`` on every platform
=================  =====================================================================

``system`` is ``sys.platform``'s spelling (``linux``, ``darwin``, ``win32``). The path class
is the caller's: the tests build Windows paths with :class:`~pathlib.PureWindowsPath`,
and the real-file tests build every platform's rule under a temporary home.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import TypeVar

__all__ = ["app_data_dir", "config_path", "detection_paths"]

P = TypeVar("P", bound=PurePath)

_FILES: dict[str, tuple[str, ...]] = {
    "claude-desktop": ("Claude", "claude_desktop_config.json"),
    "vscode": ("Code", "User", "mcp.json"),
}


def app_data_dir(system: str, home: P, env: Mapping[str, str]) -> P:
    """Where desktop (Electron) apps keep their settings: the platform's per-user config dir."""
    if system == "darwin":
        return home / "Library" / "Application Support"
    if system == "win32":
        appdata = env.get("APPDATA")
        return type(home)(appdata) if appdata else home / "AppData" / "Roaming"
    xdg = env.get("XDG_CONFIG_HOME")
    return type(home)(xdg) if xdg and type(home)(xdg).is_absolute() else home / ".config"


def config_path(client: str, *, system: str, home: P, env: Mapping[str, str], cwd: P) -> P:
    """The config file ``client`` reads its MCP servers from (whether it exists or not)."""
    if client in _FILES:
        return app_data_dir(system, home, env).joinpath(*_FILES[client])
    if client == "claude-code":
        override = env.get("CLAUDE_CONFIG_DIR")
        return (type(home)(override) if override else home) / ".claude.json"
    if client == "cursor":
        return home / ".cursor" / "mcp.json"
    if client == "vscode-workspace":
        return cwd / ".vscode" / "mcp.json"
    if client == "windsurf":
        return home / ".codeium" / "windsurf" / "mcp_config.json"
    raise ValueError(f"unknown client {client!r}")


def detection_paths(client: str, *, system: str, home: P, env: Mapping[str, str], cwd: P) -> tuple[P, ...]:
    """Paths any of which exists once the client has run for this user (its config directory)."""
    config = config_path(client, system=system, home=home, env=env, cwd=cwd)
    if client == "claude-code":
        return (config, config.parent / ".claude")
    return (config.parent,)
