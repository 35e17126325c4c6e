"""Hardening of the real CLI (subprocesses) against the fixture servers in their own process."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli_support import (
    CLI,
    FixtureProcess,
    assert_one_line_error,
    cli_env,
    list_json,
    run_cli,
    stop_daemon,
    wait_until,
    write_browser,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def fixtures() -> Iterator[FixtureProcess]:
    servers = FixtureProcess()
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A state home that does not exist yet: whatever creates it must make it private."""
    path = tmp_path / "fresh" / "home"
    yield path
    stop_daemon(path)


@pytest.fixture
def env(tmp_path: Path, home: Path) -> dict[str, str]:
    return cli_env(home, {"BROWSER": str(write_browser(tmp_path))})


def _directories(root: Path) -> list[Path]:
    return [root, *(Path(d) / n for d, names, _ in os.walk(root) for n in names)]


async def test_a_foreground_proxy_creates_every_directory_0700(
    home: Path, env: dict[str, str], fixtures: FixtureProcess
) -> None:
    previous = os.umask(0o022)  # the usual umask: mkdir alone would give 0755
    try:
        proxy = subprocess.Popen(
            [*CLI, "proxy", fixtures.mcp_url, "--name", "fg"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.umask(previous)
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: list_json(home, env=env).get("fg", {}).get("status") == "running",
            timeout=20,
            what="the foreground proxy to run",
        )
        modes = {str(d.relative_to(home.parent)): stat.S_IMODE(d.stat().st_mode) for d in _directories(home)}
    finally:
        proxy.send_signal(signal.SIGINT)
        await asyncio.to_thread(proxy.wait, 10)
    assert "home/foreground" in modes and "home/logs" in modes, modes
    assert {path: mode for path, mode in modes.items() if mode != 0o700} == {}


_BAD_URLS = [
    ("http://[::1:47001/mcp", "malformed"),
    ("https://mcp.example.com/" + "a" * 100_000, "characters long"),
    ("http://user:secret-password@127.0.0.1:9/mcp", "user name or password"),
    ("http://127.0.0.1:9/mcp\r\nX-Injected: y", "control characters"),
    ("http://127.0.0.1:9/mcp\x1b[2J", "control characters"),
    ("http://127.0.0.1:99999/mcp", "malformed"),
]


@pytest.mark.parametrize("command", ["run", "proxy", "login"])
@pytest.mark.parametrize(("url", "reason"), _BAD_URLS)
def test_a_bad_remote_url_is_a_usage_error_before_anything_happens(
    home: Path, env: dict[str, str], command: str, url: str, reason: str
) -> None:
    done = run_cli(home, command, url, env=env)
    assert_one_line_error(done, code=2, contains=reason)
    assert "secret-password" not in done.stderr
    assert "\x1b" not in done.stderr
    assert not home.exists() or not any((home / "secrets").glob("*"))  # nothing was logged in


def _marking_browser(directory: Path) -> tuple[Path, Path]:
    """A ``$BROWSER`` that only leaves a mark: whether a browser was ever opened."""
    mark = directory / "browser-opened"
    script = directory / "mark-browser.py"
    script.write_text(f"#!{sys.executable}\nimport pathlib\npathlib.Path({str(mark)!r}).touch()\n")
    script.chmod(0o700)
    return script, mark


def _unwritable_homes(tmp_path: Path) -> list[Path]:
    blocked = tmp_path / "blocked-home"
    blocked.mkdir()
    (blocked / "secrets").write_text("a file where a directory must go\n")
    homes = [blocked]
    if Path("/proc/self").is_dir():  # unwritable for every user, root included
        homes.append(Path("/proc/self/mcpkeeper-home"))
    return homes


@pytest.mark.parametrize("command", ["run", "proxy", "login"])
def test_an_unwritable_home_fails_before_the_browser_opens(
    tmp_path: Path, fixtures: FixtureProcess, command: str
) -> None:
    browser, mark = _marking_browser(tmp_path)
    for home in _unwritable_homes(tmp_path):
        env = cli_env(home, {"BROWSER": str(browser)})
        done = run_cli(home, command, fixtures.mcp_url, "--name", "w", env=env)
        assert_one_line_error(done, code=1, contains="cannot write to")
        assert "must be a writable directory" in done.stderr
        assert not mark.exists(), f"{command} opened the browser before finding {home} unwritable"
