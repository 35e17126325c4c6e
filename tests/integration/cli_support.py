"""Shared by the CLI subprocess tests: running ``mcpkeeper``, the fixture servers in their
own process, a scripted "browser", and cleaning up the daemon the CLI starts."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcpkeeper.api.paths import pid_path
from mcpkeeper.cli.foreground import pid_alive

CLI = [sys.executable, "-m", "mcpkeeper"]
_CLI_TIMEOUT = 15.0


def cli_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment pointing at ``home``: no inherited MCPKEEPER_* settings, file secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKEEPER_", "TOOLHIVE_", "BROWSER"))}
    env.update({"MCPKEEPER_HOME": str(home), "MCPKEEPER_SECRET_BACKEND": "file", "COLUMNS": "200"})
    env.update(extra or {})
    return env


def run_cli(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = _CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``mcpkeeper ARGS`` in a subprocess; bounded in time."""
    return subprocess.run(
        [*CLI, *args],
        env=env or cli_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def list_json(home: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """``mcpkeeper list --format json`` as {name: row}."""
    done = run_cli(home, "list", "--format", "json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "", interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *, code: int, contains: str) -> None:
    """The CLI failure contract: the exit code, one ``error:`` line on stderr, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, done.stderr
    assert contains in error_lines[0], error_lines[0]


def write_browser(directory: Path) -> Path:
    """A ``$BROWSER`` that follows the authorization URL like a user clicking "approve"."""
    script = directory / "browser.py"
    script.write_text(
        f"#!{sys.executable}\nimport sys, httpx\nhttpx.get(sys.argv[1], follow_redirects=True, timeout=10)\n"
    )
    script.chmod(0o700)
    return script


class FixtureProcess:
    """``python -m mcpkeeper.testing serve --json``: the fixture AS and MCP server, steerable over HTTP."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mcpkeeper.testing", "serve", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self.info = self._read_info(timeout=15.0)

    def _read_info(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise AssertionError("fixture servers did not print their URLs in time")
        info: dict[str, Any] = json.loads(self.process.stdout.readline())
        return info

    @property
    def mcp_url(self) -> str:
        return str(self.info["mcp_url"])

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.info['control_url']}{path}"
        response = (
            httpx.post(url, json=body or {}, timeout=5) if body is not None else httpx.get(url, timeout=5)
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture(scope="module", name="fixtures")
def fixture_servers() -> Iterator[FixtureProcess]:
    """``fixtures``: one :class:`FixtureProcess` per test module (import this into the module)."""
    with closing(FixtureProcess()) as servers:
        yield servers


def stop_daemon(home: Path, timeout: float = 8.0) -> None:
    """SIGTERM the daemon the CLI started for ``home`` (if any) and wait until it is gone."""
    try:
        pid = int(pid_path(home).read_text().strip())
    except (OSError, ValueError):
        return
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not pid_alive(pid), timeout=timeout, what="the daemon to exit")
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        raise
