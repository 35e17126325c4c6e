"""Installing, removing and inspecting the daemon's start at login, per platform.

* Linux with a systemd user manager: ``~/.config/systemd/user/mcpkeeper.service``,
  ``systemctl --user enable --now`` (started now and at every login);
* Linux without one (containers, WSL, some desktops): systemd is not there to ask, so the
  unit would never run. An XDG autostart entry (``~/.config/autostart/mcpkeeper.desktop``)
  is written instead, which graphical sessions (GNOME, KDE, Xfce…) start at login, and
  the caller says so plainly, with what to do on a machine without a desktop;
* macOS: ``~/Library/LaunchAgents/dev.mcpkeeper.daemon.plist``, ``launchctl bootstrap``.

The service manager's commands go through an injected :data:`Runner`, so the sequence
of calls is tested without a service manager, and a failing call is reported with the
manager's own words (one line) instead of a traceback.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mcpkeeper.autostart.units import (
    LAUNCHD_LABEL,
    SYSTEMD_UNIT_NAME,
    launchd_plist,
    systemd_unit,
    xdg_autostart_entry,
)
from mcpkeeper.state._atomic import atomic_write_bytes

__all__ = [
    "Manager",
    "Runner",
    "ServiceError",
    "ServiceReport",
    "choose_manager",
    "install",
    "run_command",
    "service_files",
    "status",
    "uninstall",
]

#: ``(exit status, output)`` of a command; 127 when the program is not there.
Runner = Callable[[Sequence[str]], tuple[int, str]]
Manager = Literal["systemd", "launchd", "xdg-autostart"]
_TIMEOUT = 30.0
_NOT_FOUND = 127


class ServiceError(Exception):
    """The service could not be installed or removed; the message is one line."""


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """What an install, uninstall or status found and did."""

    manager: Manager
    path: Path
    installed: bool
    #: The service manager runs it now (None: this manager cannot tell).
    running: bool | None = None
    notes: list[str] = field(default_factory=list)


def run_command(command: Sequence[str]) -> tuple[int, str]:
    """The default :data:`Runner`: the program's status and its output, bounded in time."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed service-manager commands, no shell
            list(command), capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except FileNotFoundError:
        return _NOT_FOUND, f"{command[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{command[0]} did not answer within {_TIMEOUT:g}s"
    return done.returncode, (done.stdout + done.stderr).strip()


def service_files(system: str, user_home: Path, env: Mapping[str, str]) -> dict[Manager, Path]:
    """Where each manager's file for this platform goes."""
    if system == "darwin":
        return {"launchd": user_home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"}
    config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME", "").startswith("/") else None
    config = config or user_home / ".config"
    return {
        "systemd": config / "systemd" / "user" / SYSTEMD_UNIT_NAME,
        "xdg-autostart": config / "autostart" / "mcpkeeper.desktop",
    }


def choose_manager(system: str, run: Runner = run_command) -> tuple[Manager, str | None]:
    """The manager to use here, and (for the XDG fallback) why systemd is not it."""
    if system == "darwin":
        return "launchd", None
    if system != "linux":
        raise ServiceError(
            f"mcpkeeper service is for Linux and macOS; on {system}, have your session start "
            "`mcpkeeper serve` at login (Windows: a shortcut in the Startup folder, or Task Scheduler)"
        )
    problem = _systemd_problem(run)
    return ("systemd", None) if problem is None else ("xdg-autostart", problem)


def install(
    system: str,
    user_home: Path,
    environ: Mapping[str, str],
    command: Sequence[str],
    daemon_env: Mapping[str, str],
    log_file: Path,
    run: Runner = run_command,
) -> ServiceReport:
    """Write the platform's file and have its manager start the daemon now and at every login."""
    files = service_files(system, user_home, environ)
    manager, manager_problem = choose_manager(system, run)
    if manager == "launchd":
        path = files["launchd"]
        _write(path, launchd_plist(command, daemon_env, log_file))
        domain = f"gui/{os.getuid()}"
        run(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"])  # an older copy, if loaded
        code, output = run(["launchctl", "bootstrap", domain, str(path)])
        if code != 0:
            raise ServiceError(f"launchctl bootstrap {domain} {path} failed: {_one_line(output)}")
        return ServiceReport("launchd", path, True, True)
    if manager == "systemd":
        path = files["systemd"]
        _write(path, systemd_unit(command, daemon_env).encode())
        for step in (["daemon-reload"], ["enable", "--now", SYSTEMD_UNIT_NAME]):
            code, output = run(["systemctl", "--user", *step])
            if code != 0:
                raise ServiceError(f"systemctl --user {' '.join(step)} failed: {_one_line(output)}")
        _remove(files["xdg-autostart"])  # one way to start it, not two
        return ServiceReport("systemd", path, True, True)
    path = files["xdg-autostart"]
    _write(path, xdg_autostart_entry(command, daemon_env).encode())
    prefix = ["env", *(f"{key}={value}" for key, value in daemon_env.items())] if daemon_env else []
    notes = [
        f"no systemd user session here ({manager_problem}), so no systemd unit: wrote {path} instead, "
        "which desktop sessions (GNOME, KDE, Xfce...) run at login",
        "on a machine without a desktop session, start the daemon at boot yourself, "
        f"e.g. with the crontab line `@reboot {shlex.join([*prefix, *command, 'serve'])}`",
    ]
    return ServiceReport("xdg-autostart", path, True, None, notes)


def uninstall(
    system: str, user_home: Path, environ: Mapping[str, str], run: Runner = run_command
) -> list[ServiceReport]:
    """Remove every file ``install`` may have written here, stopping what its manager runs."""
    reports = []
    for manager, path in service_files(system, user_home, environ).items():
        if not path.exists():
            continue
        if manager == "systemd":
            run(["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT_NAME])
            _remove(path)
            run(["systemctl", "--user", "daemon-reload"])
        elif manager == "launchd":
            run(["launchctl", "bootout", f"gui/{os.getuid()}/{LAUNCHD_LABEL}"])
            _remove(path)
        else:
            _remove(path)
        reports.append(ServiceReport(manager, path, False, False))
    return reports


def status(
    system: str,
    user_home: Path,
    environ: Mapping[str, str],
    command: Sequence[str],
    run: Runner = run_command,
) -> list[ServiceReport]:
    """Each manager's file here: there or not, whether its manager runs the daemon now, and
    whether it starts this installation (``command``) or another one."""
    reports = []
    for manager, path in service_files(system, user_home, environ).items():
        installed = path.exists()
        running: bool | None = None
        notes: list[str] = []
        if installed and manager == "systemd":
            code, output = run(["systemctl", "--user", "is-active", SYSTEMD_UNIT_NAME])
            running = code == 0
            if code == _NOT_FOUND or (code != 0 and not output.strip()):
                running = None
            notes.append(f"systemd says: {_one_line(output) or 'nothing'}")
        elif installed and manager == "launchd":
            code, _ = run(["launchctl", "print", f"gui/{os.getuid()}/{LAUNCHD_LABEL}"])
            running = code == 0
        if installed:
            notes.extend(_other_installation(path, command))
        reports.append(ServiceReport(manager, path, installed, running, notes))
    return reports


def _systemd_problem(run: Runner) -> str | None:
    """Why the systemd user manager cannot be used here, or None when it can."""
    code, output = run(["systemctl", "--user", "show-environment"])
    if code != 0:
        return f"systemctl --user: {_one_line(output) or f'exit status {code}'}"
    return None


def _other_installation(path: Path, command: Sequence[str]) -> list[str]:
    """A note when the file starts another mcpkeeper than this one (moved, reinstalled, another venv)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if command[0] in text:
        return []
    return [
        f"{path} starts another mcpkeeper than {command[0]}; "
        "`mcpkeeper service install` again to use this one"
    ]


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, mode=0o600)
    except OSError as exc:
        raise ServiceError(f"cannot write {path}: {exc.strerror or exc}") from None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise ServiceError(f"cannot remove {path}: {exc.strerror or exc}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
