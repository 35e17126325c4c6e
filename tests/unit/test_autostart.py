"""The daemon's start at login: the unit, plist and autostart entry as text, and the manager calls made."""

from __future__ import annotations

import os
import plistlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from mcpkeeper.autostart.service import ServiceError, install, status, uninstall
from mcpkeeper.autostart.units import daemon_environment, launchd_plist, systemd_unit, xdg_autostart_entry

COMMAND = ("/home/ann/My Tools/venv/bin/mcpkeeper",)
ENV = {"MCPKEEPER_HOME": "/home/ann/state 100%", "HTTPS_PROXY": "http://proxy:3128"}


def test_the_systemd_unit_runs_serve_at_login_and_restarts_only_after_a_crash() -> None:
    unit = systemd_unit(COMMAND, ENV)
    assert unit.splitlines() == [
        "# Written by `mcpkeeper service install`; `mcpkeeper service uninstall` removes it.",
        "[Unit]",
        "Description=mcpkeeper daemon: keeps OAuth-protected remote MCP servers usable from MCP clients",
        "",
        "[Service]",
        "Type=simple",
        'ExecStart="/home/ann/My Tools/venv/bin/mcpkeeper" serve',
        'Environment="MCPKEEPER_HOME=/home/ann/state 100%%"',
        "Environment=HTTPS_PROXY=http://proxy:3128",
        "Restart=on-failure",
        "RestartSec=5s",
        "RestartPreventExitStatus=5",
        "SuccessExitStatus=5",
        "TimeoutStopSec=30s",
        "",
        "[Install]",
        "WantedBy=default.target",
    ]


def test_systemd_words_escape_specifiers_variables_and_quotes() -> None:
    unit = systemd_unit(("/usr/bin/python3", "-m", "mcpkeeper"), {"X": 'a"$b\\c'})
    assert "ExecStart=/usr/bin/python3 -m mcpkeeper serve" in unit
    assert 'Environment="X=a\\"$$b\\\\c"' in unit


def test_the_launchd_agent_runs_at_load_and_is_kept_alive_after_a_failure() -> None:
    agent = plistlib.loads(launchd_plist(COMMAND, ENV, Path("/Users/ann/state/logs/daemon.log")))
    assert agent == {
        "Label": "dev.mcpkeeper.daemon",
        "ProgramArguments": [*COMMAND, "serve"],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "StandardOutPath": "/Users/ann/state/logs/daemon.log",
        "StandardErrorPath": "/Users/ann/state/logs/daemon.log",
        "EnvironmentVariables": ENV,
    }


def test_the_autostart_entry_quotes_as_the_desktop_entry_spec_says() -> None:
    entry = xdg_autostart_entry(COMMAND, {"MCPKEEPER_HOME": "/s 100%"})
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert exec_line == 'Exec=env "MCPKEEPER_HOME=/s 100%%" "/home/ann/My Tools/venv/bin/mcpkeeper" serve'
    assert "Type=Application" in entry and "Terminal=false" in entry
    tricky = xdg_autostart_entry(("/opt/a$b\\c",), {})
    assert 'Exec="/opt/a\\\\$b\\\\\\\\c" serve' in tricky


def test_the_daemon_gets_settings_and_proxies_but_no_secret() -> None:
    environ = {
        "MCPKEEPER_CLIENT_AUTH": "on",
        "MCPKEEPER_TOKEN_REFRESH_AHEAD": "0.8",
        "MCPKEEPER_CLIENT_SECRET": "s3cret",
        "MCPKEEPER_HOME": "/elsewhere",
        "TOOLHIVE_TOKEN_REFRESH_MAX_TRIES": "3",
        "https_proxy": "http://p:1",
        "PATH": "/usr/bin",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    assert daemon_environment(environ, Path("/data/mk")) == {
        "MCPKEEPER_CLIENT_AUTH": "on",
        "MCPKEEPER_TOKEN_REFRESH_AHEAD": "0.8",
        "TOOLHIVE_TOKEN_REFRESH_MAX_TRIES": "3",
        "https_proxy": "http://p:1",
        "MCPKEEPER_HOME": "/data/mk",
    }
    assert "MCPKEEPER_HOME" not in daemon_environment(environ, None)


class FakeManager:
    """Records the commands; answers from a table (default: success)."""

    def __init__(self, answers: dict[str, tuple[int, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, command: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(command))
        return self.answers.get(" ".join(command[1:]), (0, ""))


def _install(tmp_path: Path, system: str, manager: FakeManager) -> Path:
    report = install(system, tmp_path, {}, COMMAND, {}, tmp_path / "daemon.log", run=manager)
    assert report.installed
    return report.path


def test_install_with_a_systemd_user_manager(tmp_path: Path) -> None:
    stale = tmp_path / ".config" / "autostart" / "mcpkeeper.desktop"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    manager = FakeManager()
    path = _install(tmp_path, "linux", manager)
    assert path == tmp_path / ".config" / "systemd" / "user" / "mcpkeeper.service"
    assert path.read_text() == systemd_unit(COMMAND, {})
    assert path.stat().st_mode & 0o777 == 0o600
    assert manager.calls == [
        ["systemctl", "--user", "show-environment"],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "mcpkeeper.service"],
    ]
    assert not stale.exists()  # one way to start it, not two


def test_install_falls_back_to_xdg_autostart_without_a_systemd_user_session(tmp_path: Path) -> None:
    manager = FakeManager({"--user show-environment": (1, "Failed to connect to bus: No medium found")})
    report = install(
        "linux", tmp_path, {}, COMMAND, {"MCPKEEPER_HOME": "/s"}, tmp_path / "d.log", run=manager
    )
    assert report.manager == "xdg-autostart"
    assert report.path == tmp_path / ".config" / "autostart" / "mcpkeeper.desktop"
    assert report.path.read_text() == xdg_autostart_entry(COMMAND, {"MCPKEEPER_HOME": "/s"})
    assert "no systemd user session here (systemctl --user: Failed to connect to bus" in report.notes[0]
    assert "@reboot env MCPKEEPER_HOME=/s '/home/ann/My Tools/venv/bin/mcpkeeper' serve" in report.notes[1]
    assert not (tmp_path / ".config" / "systemd").exists()
    missing = FakeManager({"--user show-environment": (127, "systemctl: not found")})
    assert (
        install("linux", tmp_path, {}, COMMAND, {}, tmp_path / "d.log", run=missing).manager
        == "xdg-autostart"
    )


def test_a_failing_systemctl_is_one_line_with_its_words(tmp_path: Path) -> None:
    manager = FakeManager({"--user enable --now mcpkeeper.service": (1, "Failed to enable unit:\n  denied")})
    with pytest.raises(
        ServiceError, match=r"enable --now mcpkeeper\.service failed: Failed to enable unit: denied"
    ):
        _install(tmp_path, "linux", manager)


def test_install_on_macos_bootstraps_a_launch_agent(tmp_path: Path) -> None:
    manager = FakeManager()
    path = _install(tmp_path, "darwin", manager)
    assert path == tmp_path / "Library" / "LaunchAgents" / "dev.mcpkeeper.daemon.plist"
    assert plistlib.loads(path.read_bytes())["ProgramArguments"] == [*COMMAND, "serve"]
    domain = f"gui/{os.getuid()}"
    assert manager.calls == [
        ["launchctl", "bootout", f"{domain}/dev.mcpkeeper.daemon"],
        ["launchctl", "bootstrap", domain, str(path)],
    ]


def test_other_platforms_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="Startup folder, or Task Scheduler"):
        _install(tmp_path, "win32", FakeManager())


def test_uninstall_stops_and_removes_what_install_wrote(tmp_path: Path) -> None:
    assert uninstall("linux", tmp_path, {}, run=FakeManager()) == []
    path = _install(tmp_path, "linux", FakeManager())
    manager = FakeManager()
    [report] = uninstall("linux", tmp_path, {}, run=manager)
    assert report.path == path and not path.exists()
    assert manager.calls == [
        ["systemctl", "--user", "disable", "--now", "mcpkeeper.service"],
        ["systemctl", "--user", "daemon-reload"],
    ]
    plist = _install(tmp_path, "darwin", FakeManager())
    manager = FakeManager()
    uninstall("darwin", tmp_path, {}, run=manager)
    assert not plist.exists() and manager.calls == [
        ["launchctl", "bootout", f"gui/{os.getuid()}/dev.mcpkeeper.daemon"]
    ]


def test_status_says_what_the_manager_runs_and_which_installation(tmp_path: Path) -> None:
    _install(tmp_path, "linux", FakeManager())
    reports = {r.manager: r for r in status("linux", tmp_path, {}, COMMAND, run=FakeManager())}
    assert reports["systemd"].installed and reports["systemd"].running is True
    assert not reports["xdg-autostart"].installed
    inactive = FakeManager({"--user is-active mcpkeeper.service": (3, "inactive")})
    reports = {r.manager: r for r in status("linux", tmp_path, {}, ("/other/mcpkeeper",), run=inactive)}
    assert reports["systemd"].running is False
    assert any("starts another mcpkeeper than /other/mcpkeeper" in note for note in reports["systemd"].notes)
