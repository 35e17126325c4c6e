"""``mcpkeeper service`` on this machine, which has no systemd user session: the fallback, for real."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mcpkeeper.cli.foreground import pid_alive
from tests.integration.cli_support import cli_env, run_cli, stop_daemon

pytestmark = pytest.mark.integration


def _systemd_user_session() -> bool:
    if shutil.which("systemctl") is None:
        return False
    done = subprocess.run(
        ["systemctl", "--user", "show-environment"], capture_output=True, timeout=10, check=False
    )
    return done.returncode == 0


@pytest.mark.skipif(
    _systemd_user_session(), reason="this machine has a systemd user session: no fallback to see"
)
def test_install_without_systemd_falls_back_says_so_and_starts_the_daemon(tmp_path: Path) -> None:
    state, user_home = tmp_path / "state", tmp_path / "home"
    env = cli_env(state, {"HOME": str(user_home)})
    env.pop("XDG_CONFIG_HOME", None)
    try:
        done = run_cli(state, "service", "install", env=env, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "no systemd user session here" in done.stdout
        assert "@reboot" in done.stdout  # what to do on a machine without a desktop session
        entry = user_home / ".config" / "autostart" / "mcpkeeper.desktop"
        exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
        assert f"MCPKEEPER_HOME={state}" in exec_line and exec_line.endswith(" serve")
        assert not (user_home / ".config" / "systemd").exists()

        done = run_cli(state, "service", "status", "-o", "json", env=env)
        report = json.loads(done.stdout)
        assert [i["manager"] for i in report["installed"]] == ["xdg-autostart"]
        assert pid_alive(report["daemon_pid"])  # started now, not only at the next login

        done = run_cli(state, "service", "uninstall", env=env)
        assert done.returncode == 0 and not entry.exists()
        done = run_cli(state, "service", "status", env=env)
        assert "Not installed" in done.stdout
    finally:
        stop_daemon(state)
