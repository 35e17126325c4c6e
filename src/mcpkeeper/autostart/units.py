"""The files that start the daemon at login: a systemd user unit, a launchd agent, an XDG autostart entry.

Pure functions of the command and the environment, so their content is tested as text.
Each runs ``<absolute mcpkeeper> serve`` (the same installation that wrote it: a desktop
session's login environment does not have the user's shell ``PATH``), with the settings
the daemon would otherwise inherit from the CLI that starts it (``MCPKEEPER_*``, the
``TOOLHIVE_*`` fallbacks, and the proxy variables, which every outgoing request honours).

The files are readable by the user alone: a proxy variable may carry a password.

Restart policy: a crash is restarted; a clean exit (``mcpkeeper shutdown``) is not, and
neither is exit status 5, "another daemon already serves this home" (the CLI started
one first: one daemon per home is the rule, not a failure).
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from mcpkeeper.exit_status import EXIT_ALREADY_RUNNING

__all__ = [
    "LAUNCHD_LABEL",
    "SYSTEMD_UNIT_NAME",
    "daemon_environment",
    "launchd_plist",
    "systemd_unit",
    "xdg_autostart_entry",
]

SYSTEMD_UNIT_NAME = "mcpkeeper.service"
LAUNCHD_LABEL = "dev.mcpkeeper.daemon"
_HEADER = "Written by `mcpkeeper service install`; `mcpkeeper service uninstall` removes it."
_PASSED_PREFIXES = ("MCPKEEPER_", "TOOLHIVE_")
_SECRET_WORDS = ("SECRET", "PASSWORD", "PRIVATE_KEY")
_PROXY_VARIABLES = frozenset(
    name for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY") for name in (base, base.lower())
)


def daemon_environment(environ: Mapping[str, str], home: Path | None) -> dict[str, str]:
    """The variables the daemon gets: mcpkeeper's settings and proxies, and its home if not the default.

    Never a secret (``MCPKEEPER_CLIENT_SECRET`` is for a login, which stores what it needs).
    """
    env = {
        key: value
        for key, value in sorted(environ.items())
        if (key.startswith(_PASSED_PREFIXES) or key in _PROXY_VARIABLES)
        and key != "MCPKEEPER_HOME"
        and not any(word in key for word in _SECRET_WORDS)
    }
    if home is not None:
        env["MCPKEEPER_HOME"] = str(home)
    return env


def systemd_unit(command: Sequence[str], env: Mapping[str, str]) -> str:
    """A systemd *user* unit running ``command serve`` from login (``default.target``) on."""
    lines = [
        f"# {_HEADER}",
        "[Unit]",
        "Description=mcpkeeper daemon: keeps OAuth-protected remote MCP servers usable from MCP clients",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={' '.join(_systemd_word(word) for word in [*command, 'serve'])}",
        *(f"Environment={_systemd_word(f'{key}={value}')}" for key, value in env.items()),
        "Restart=on-failure",
        "RestartSec=5s",
        f"RestartPreventExitStatus={EXIT_ALREADY_RUNNING}",
        f"SuccessExitStatus={EXIT_ALREADY_RUNNING}",
        "TimeoutStopSec=30s",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def launchd_plist(command: Sequence[str], env: Mapping[str, str], log_file: Path) -> bytes:
    """A launchd agent (``~/Library/LaunchAgents``): ``command serve`` at login, restarted after a crash."""
    agent: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [*command, "serve"],
        "RunAtLoad": True,
        # Restarted when it exits with a failure; `mcpkeeper shutdown` (exit 0) stays down.
        "KeepAlive": {"SuccessfulExit": False},
        "StandardOutPath": str(log_file),
        "StandardErrorPath": str(log_file),
    }
    if env:
        agent["EnvironmentVariables"] = dict(env)
    return plistlib.dumps(agent, sort_keys=False)


def xdg_autostart_entry(command: Sequence[str], env: Mapping[str, str]) -> str:
    """An XDG autostart entry (``~/.config/autostart``): desktop sessions without systemd run it at login."""
    words = [*command, "serve"]
    if env:
        words = ["env", *(f"{key}={value}" for key, value in env.items()), *words]
    return "\n".join(
        [
            f"# {_HEADER}",
            "[Desktop Entry]",
            "Type=Application",
            "Name=mcpkeeper daemon",
            "Comment=Keeps OAuth-protected remote MCP servers usable from MCP clients",
            f"Exec={' '.join(_desktop_word(word) for word in words)}",
            "Terminal=false",
            "NoDisplay=true",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]
    )


_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def _systemd_word(word: str) -> str:
    """One ExecStart/Environment word: ``%`` and ``$`` escaped (specifiers, variables), quoted when needed."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_PLAIN.fullmatch(escaped):
        return escaped
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_DESKTOP_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _desktop_word(word: str) -> str:
    """One Exec word (Desktop Entry spec): field codes escaped, quoted if it holds a reserved character.

    Inside quotes ``"``, `` ` ``, ``$`` and ``\\`` take a backslash; then the string escape of
    every value applies on top, which doubles each backslash again.
    """
    word = word.replace("%", "%%")
    if not any(char in _DESKTOP_RESERVED for char in word):
        return word
    for char in ("\\", '"', "`", "$"):
        word = word.replace(char, "\\" + char)
    return f'"{word}"'.replace("\\", "\\\\")
