"""The ``mcpkeeper`` CLI in subprocesses against a real state directory, no daemon needed.

State is written through the real stores (as the daemon writes it); the CLI reads it
back. Every failure must be one ``error:`` line with a non-zero exit code, and a
traceback only with ``--debug``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpkeeper.api.paths import pid_path
from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.auth.token import Token
from mcpkeeper.cli.foreground import foreground_store
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from mcpkeeper.testing import serve_asgi
from mcpkeeper.workloads.logs import workload_log_file
from tests.integration.cli_support import (
    CLI,
    assert_one_line_error,
    cli_env,
    list_json,
    run_cli,
    stop_daemon,
    wait_until,
)

_ACCESS = "at-secret-value-never-printed-0123456789"
_REFRESH = "rt-secret-value-never-printed-9876543210"


def _put(home: Path, name: str, status: WorkloadStatus, reason: str, **config: object) -> None:
    WorkloadStore(home).put(
        WorkloadConfig(
            name=name, remote_url=f"https://{name}.example.com/mcp", port=42000 + len(name), **config
        )  # type: ignore[arg-type]
    )
    StatusStore(home).set(name, status, reason, pid=os.getpid())  # this test process: alive


def _populate(home: Path) -> None:
    _put(home, "alpha", WorkloadStatus.RUNNING, "token refreshed")
    _put(home, "bravo", WorkloadStatus.AUTH_RETRYING, "token endpoint answered HTTP 503; next attempt in 10m")
    _put(home, "charlie", WorkloadStatus.UNAUTHENTICATED, "refresh token rejected (invalid_grant)")
    _put(home, "delta", WorkloadStatus.STOPPED, "stopped by the user", desired_state="stopped")


def _store_login(home: Path, name: str) -> None:
    token = Token(access_token=_ACCESS, refresh_token=_REFRESH, expires_at=time.time() + 3600)
    CredentialStore.open(home).save(
        name,
        StoredLogin(
            remote_url=f"https://{name}.example.com/mcp",
            issuer="https://auth.example.com",
            authorization_endpoint="https://auth.example.com/authorize",
            token_endpoint="https://auth.example.com/token",
            client=ClientRegistration(client_id="client-1"),
            token=token,
        ),
    )


@pytest.fixture(autouse=True)
def _no_daemon_left_behind(tmp_path: Path) -> Iterator[None]:
    """These tests expect no daemon; if a bug starts one, stop it rather than leak it."""
    yield
    stop_daemon(tmp_path)


def test_list_on_an_empty_home(tmp_path: Path) -> None:
    table = run_cli(tmp_path, "list")
    assert table.returncode == 0, table.stderr
    assert "No workloads" in table.stdout
    as_json = run_cli(tmp_path, "list", "--format", "json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == []
    assert not pid_path(tmp_path).exists()  # list never starts a daemon


def test_list_table_shows_every_column_and_hides_user_stopped(tmp_path: Path) -> None:
    _populate(tmp_path)
    done = run_cli(tmp_path, "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "REMOTE", "LOCAL", "URL", "SINCE"]
    # Each row, then its reason on a line of its own (indented).
    rows = {
        line.split()[0]: line + "\n" + reason for line, reason in zip(lines[1::2], lines[2::2], strict=True)
    }
    assert all(reason.startswith("  ") for reason in lines[2::2])
    assert set(rows) == {"alpha", "bravo", "charlie"}
    assert rows["alpha"].split()[1:4] == [
        "running",
        "https://alpha.example.com/mcp",
        "http://127.0.0.1:42005/mcp",
    ]
    assert "auth_retrying" in rows["bravo"] and "HTTP 503" in rows["bravo"]
    assert "unauthenticated" in rows["charlie"] and "invalid_grant" in rows["charlie"]
    assert "ago" in rows["alpha"]
    everything = run_cli(tmp_path, "list", "--all")
    assert "delta" in everything.stdout and "stopped by the user" in everything.stdout


def test_list_at_80_columns_in_a_terminal_shortens_visibly(tmp_path: Path) -> None:
    _put(tmp_path, "alpha", WorkloadStatus.AUTH_RETRYING, "token endpoint answered HTTP 503; " * 4)
    WorkloadStore(tmp_path).put(
        WorkloadConfig(
            name="alpha",
            remote_url="https://mcp.a-very-long-host-name-indeed.example.com/v1/tenants/acme/mcp",
            port=42007,
        )
    )
    lines = _in_a_terminal(tmp_path, ["list"], columns=80).splitlines()
    assert lines and all(len(line) <= 80 for line in lines), lines
    row = next(line for line in lines if line.startswith("alpha"))
    assert "…" in row and "http://127.0.0.1:42007" in row
    assert lines[lines.index(row) + 1].endswith("… (mcpkeeper status alpha)")


def _in_a_terminal(home: Path, args: list[str], *, columns: int) -> str:
    """``mcpkeeper ARGS`` with its stdout on a pseudo-terminal ``columns`` wide; what it printed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**cli_env(home), "COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1"}
    process = subprocess.Popen(
        [*CLI, *args], stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        process.wait(15)
    assert process.returncode == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_list_json_is_a_list_of_workload_objects(tmp_path: Path) -> None:
    _populate(tmp_path)
    rows = list_json(tmp_path, "--all")
    assert set(rows) == {"alpha", "bravo", "charlie", "delta"}
    bravo = rows["bravo"]
    assert bravo["status"] == "auth_retrying" and bravo["health"] == "degraded"
    assert bravo["status_context"].startswith("token endpoint answered HTTP 503")
    assert bravo["remote_url"] == "https://bravo.example.com/mcp"
    assert bravo["url"] == "http://127.0.0.1:42005/mcp"
    assert rows["delta"]["status"] == "stopped"
    assert "delta" not in list_json(tmp_path)


def test_a_corrupted_status_file_still_lists_the_others(tmp_path: Path) -> None:
    _populate(tmp_path)
    StatusStore(tmp_path).path("bravo").write_bytes(b"\x00{garbage")
    rows = list_json(tmp_path)
    assert rows["bravo"]["status"] == "unknown"
    assert "unreadable" in rows["bravo"]["status_context"]
    assert rows["alpha"]["status"] == "running" and rows["charlie"]["status"] == "unauthenticated"
    table = run_cli(tmp_path, "list")
    assert table.returncode == 0 and "unknown" in table.stdout and "alpha" in table.stdout


def test_a_host_process_that_died_shows_stopped_and_stays_visible(tmp_path: Path) -> None:
    WorkloadStore(tmp_path).put(WorkloadConfig(name="w", remote_url="https://w.example.com/mcp", port=42100))
    finished = subprocess.Popen(["true"])
    finished.wait(5)
    StatusStore(tmp_path).set("w", WorkloadStatus.RUNNING, "token refreshed", pid=finished.pid)
    row = list_json(tmp_path)["w"]
    assert row["status"] == "stopped" and "daemon not running" in row["status_context"]
    assert json.loads(StatusStore(tmp_path).path("w").read_text())["status"] == "running"  # not rewritten


def test_tokens_never_appear_in_list_or_status(tmp_path: Path) -> None:
    _populate(tmp_path)
    _store_login(tmp_path, "alpha")
    outputs = [
        run_cli(tmp_path, "list", "--all"),
        run_cli(tmp_path, "list", "--all", "--format", "json"),
        run_cli(tmp_path, "status", "alpha"),
        run_cli(tmp_path, "status", "alpha", "--format", "json"),
    ]
    for done in outputs:
        assert done.returncode == 0, done.stderr
        for secret in (_ACCESS, _REFRESH):
            assert secret not in done.stdout and secret not in done.stderr


def test_status_from_disk_shows_expiry_and_history(tmp_path: Path) -> None:
    _populate(tmp_path)
    _store_login(tmp_path, "alpha")
    StatusStore(tmp_path).set(
        "alpha", WorkloadStatus.AUTH_RETRYING, "HTTP 502 from the token endpoint", pid=os.getpid()
    )
    StatusStore(tmp_path).set("alpha", WorkloadStatus.RUNNING, "recovered", pid=os.getpid())
    done = run_cli(tmp_path, "status", "alpha")
    assert done.returncode == 0, done.stderr
    assert "access token expires" in done.stdout and "(in 59m)" in done.stdout
    assert "refresh token" in done.stdout and "present" in done.stdout
    history = done.stdout[done.stdout.index("History") :]
    assert history.index("auth_retrying") < history.index("recovered")
    detail = json.loads(run_cli(tmp_path, "status", "alpha", "-o", "json").stdout)
    assert detail["source"] == "disk" and detail["status"] == "running"
    assert [h["status"] for h in detail["history"]] == ["running", "auth_retrying", "running"]
    assert detail["auth"]["has_refresh_token"] is True


@pytest.mark.parametrize(
    "command",
    [["status"], ["stop"], ["start"], ["restart"], ["rm"], ["logs"], ["connect"], ["login"]],
    ids=lambda c: c[0],
)
def test_unknown_workload_is_one_clear_error(tmp_path: Path, command: list[str]) -> None:
    done = run_cli(tmp_path, *command, "nosuch")
    assert_one_line_error(done, code=3, contains="no workload named")
    assert not pid_path(tmp_path).exists()  # no daemon started for a name that does not exist


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "--debug", "status", "nosuch")
    assert done.returncode == 3
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("error: no workload named")


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["status", "../etc"], "invalid workload name"),
        (["frobnicate"], "No such command"),
        (["list", "--format", "yaml"], "--format"),
        (["run", "not-a-url"], "not an http(s) URL"),
        (["proxy", "http://127.0.0.1:1/mcp", "--stdio", "--port", "4000"], "exclude each other"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], contains: str) -> None:
    assert_one_line_error(run_cli(tmp_path, *args), code=2, contains=contains)


def test_version_and_help(tmp_path: Path) -> None:
    version = run_cli(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("mcpkeeper ")
    helped = run_cli(tmp_path, "--help")
    assert helped.returncode == 0
    for command in (
        "run",
        "list",
        "status",
        "login",
        "stop",
        "start",
        "restart",
        "rm",
        "logs",
        "connect",
        "proxy",
        "serve",
    ):
        assert command in helped.stdout


def test_run_an_unreachable_remote_fails_cleanly_and_stores_nothing(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "run", "http://127.0.0.1:9/mcp", "--name", "gone")
    assert_one_line_error(done, code=1, contains="cannot reach")
    assert not WorkloadStore(tmp_path).exists("gone")
    assert CredentialStore.open(tmp_path).load("gone") is None
    assert not pid_path(tmp_path).exists()


async def test_run_a_remote_that_is_not_mcp_fails_cleanly(tmp_path: Path) -> None:
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def page(request: object) -> HTMLResponse:
        return HTMLResponse("<html>a blog</html>")

    # A static web site: pages for GET, 405 for POST, 404 elsewhere (no OAuth metadata).
    app = Starlette(routes=[Route("/", page, methods=["GET"]), Route("/mcp", page, methods=["GET"])])
    async with serve_asgi(app, lifespan="off") as served:
        done = await asyncio.to_thread(run_cli, tmp_path, "run", f"{served.url}/mcp", "--name", "blog")
    assert_one_line_error(done, code=1, contains="does not look like an MCP server")
    assert not WorkloadStore(tmp_path).exists("blog")


def test_run_refuses_a_name_in_use_before_any_login(tmp_path: Path) -> None:
    _populate(tmp_path)
    done = run_cli(tmp_path, "run", "http://127.0.0.1:9/mcp", "--name", "alpha")
    assert_one_line_error(done, code=1, contains="already exists")
    assert "Discovering" not in done.stderr


def test_lifecycle_of_a_foreground_workload_points_at_its_terminal(tmp_path: Path) -> None:
    foreground_store(tmp_path).put(
        WorkloadConfig(name="fg", remote_url="https://fg.example.com/mcp", port=42200)
    )
    assert_one_line_error(run_cli(tmp_path, "stop", "fg"), code=1, contains="runs in the foreground")


def test_logs_prints_tails_and_follows(tmp_path: Path) -> None:
    _populate(tmp_path)
    log = workload_log_file(tmp_path, "alpha")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("line one\nline two\nline three\n")
    whole = run_cli(tmp_path, "logs", "alpha")
    assert whole.returncode == 0 and whole.stdout == "line one\nline two\nline three\n"
    assert run_cli(tmp_path, "logs", "alpha", "-n", "1").stdout == "line three\n"
    assert run_cli(tmp_path, "logs", "bravo").returncode == 0  # known workload, no log yet

    captured = tmp_path / "follow.out"
    with captured.open("wb") as sink:
        follower = subprocess.Popen([*CLI, "logs", "alpha", "-f"], env=cli_env(tmp_path), stdout=sink)
    try:
        wait_until(lambda: captured.read_text().endswith("line three\n"), timeout=10, what="the backlog")
        with log.open("a") as fh:
            fh.write("appended later\n")
        wait_until(lambda: captured.read_text().endswith("appended later\n"), timeout=10, what="the new line")
    finally:
        follower.send_signal(signal.SIGINT)
        code = follower.wait(10)
    assert code == 0
    assert captured.read_text() == "line one\nline two\nline three\nappended later\n"


def test_logs_as_json_lines(tmp_path: Path) -> None:
    _populate(tmp_path)
    log = workload_log_file(tmp_path, "alpha")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "2025-01-02 10:00:00,123 INFO mcpkeeper.workload: alpha: token refreshed: expires in 1h\n"
        "Traceback (most recent call last):\n"
    )
    done = run_cli(tmp_path, "logs", "alpha", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {
            "time": "2025-01-02 10:00:00,123",
            "level": "INFO",
            "logger": "mcpkeeper.workload",
            "message": "alpha: token refreshed: expires in 1h",
        },
        {"message": "Traceback (most recent call last):"},
    ]


def test_list_imports_no_heavy_module(tmp_path: Path) -> None:
    """Start-up guard: ``list`` must not pay for the HTTP stack, servers, the MCP SDK, locks or pydantic."""
    _populate(tmp_path)
    probe = (
        "import sys, contextlib, io\n"
        "from mcpkeeper.cli.app import run_cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert run_cli(['list', '--all']) == 0\n"
        "heavy = ('httpx', 'httpx2', 'mcp', 'uvicorn', 'starlette', 'mcpkeeper.cli.run_cmd',\n"
        "         'asyncio', 'filelock', 'pydantic')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=cli_env(tmp_path), capture_output=True, text=True, timeout=15
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_home_option_overrides_the_environment(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    _populate(elsewhere)
    done = run_cli(tmp_path, "--home", str(elsewhere), "list", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert {row["name"] for row in json.loads(done.stdout)} == {"alpha", "bravo", "charlie"}
