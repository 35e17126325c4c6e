"""Shared by the daemon / control API integration tests: a real daemon process, stored
logins minted by the fixture authorization server, and bounded waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

from mcpkeeper.api.client import AsyncDaemonClient
from mcpkeeper.api.paths import daemon_log_path, socket_path
from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.auth.token import Token
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer

#: Monitor timings short enough for tests: retry after 200 ms, give up the short retry
#: after 2 tries, then one attempt per 2 s tick (plus demand-triggered attempts).
FAST_TIMINGS = {
    "MCPKEEPER_TOKEN_REFRESH_INITIAL_RETRY_INTERVAL": "200ms",
    "MCPKEEPER_TOKEN_REFRESH_MAX_RETRY_INTERVAL": "400ms",
    "MCPKEEPER_TOKEN_REFRESH_MAX_TRIES": "2",
    "MCPKEEPER_TOKEN_AUTH_RETRYING_TICK_INTERVAL": "2s",
    "MCPKEEPER_TOKEN_DEMAND_INITIAL_INTERVAL": "500ms",
    "MCPKEEPER_TOKEN_DEMAND_MAX_INTERVAL": "1s",
    "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "1s",
    "MCPKEEPER_TOKEN_WAKE_CHECK_INTERVAL": "500ms",
}

_START_TIMEOUT = 10.0


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float = 8.0, interval: float = 0.05, what: str = ""
) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(interval)


def store_login(
    home: Path,
    name: str,
    auth: FixtureAuthServer,
    mcp: FixtureMCPServer,
    *,
    expires_at: float | None = None,
    registered_client_id: str | None = None,
) -> Token:
    """Put a login in ``home``'s credential store as if ``mcpkeeper login`` had run.

    ``expires_at`` overrides the token's expiry as the client believes it (the past: a
    token that must be refreshed first thing); ``registered_client_id`` stores a dynamic
    client registration other than the one the tokens were issued to (a stale one).
    """
    client_id = f"client-{name}"
    response = auth.mint(client_id, resource=mcp.url)
    now = time.time()
    token = Token(
        access_token=response["access_token"],
        refresh_token=response.get("refresh_token"),
        expires_at=now + float(response["expires_in"]) if expires_at is None else expires_at,
        scope=response.get("scope"),
        issued_at=now,
    )
    login = StoredLogin(
        remote_url=mcp.url,
        issuer=auth.issuer,
        authorization_endpoint=auth.authorization_endpoint,
        token_endpoint=auth.token_endpoint,
        client=ClientRegistration(
            client_id=registered_client_id or client_id, dynamic=registered_client_id is not None
        ),
        resource=mcp.url,
        scopes=("mcp",),
        token=token,
    )
    CredentialStore.open(home).save(name, login)
    return token


def stored_token(home: Path, name: str) -> Token | None:
    login = CredentialStore.open(home).load(name)
    return login.token if login is not None else None


async def call_echo(url: str, text: str) -> str:
    """One MCP session through ``url`` with the official SDK client: initialize + tools/call echo."""
    async with Client(url) as client:
        result = await client.call_tool("echo", {"text": text})
    assert not result.is_error, result
    return str(result.structured_content["result"]) if result.structured_content else ""


def daemon_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKEEPER_", "TOOLHIVE_"))}
    env.update({"MCPKEEPER_HOME": str(home), "MCPKEEPER_SECRET_BACKEND": "file"})
    env.update(extra or {})
    return env


class DaemonProcess:
    """``mcpkeeper serve`` in a subprocess (``python -m mcpkeeper.daemon``) for one test."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = daemon_env(home, env)
        self.process: subprocess.Popen[bytes] | None = None
        self.client = AsyncDaemonClient(home, timeout=10.0)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> DaemonProcess:
        log_path = daemon_log_path(self.home)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mcpkeeper.daemon"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await wait_for(self._ready, timeout=_START_TIMEOUT, what="the daemon to answer")
        return self

    async def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
        return await self.client.ping()

    def log(self) -> str:
        try:
            return daemon_log_path(self.home).read_text()[-4000:]
        except OSError:
            return ""

    async def terminate(self, timeout: float = 8.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await self._wait_exit(timeout)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self._wait_exit(5.0)

    async def _wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait(5)
                raise AssertionError(f"daemon did not exit within {timeout}s:\n{self.log()}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    async def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        await self.client.aclose()

    async def __aenter__(self) -> DaemonProcess:
        try:
            return await self.start()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def status_of(self, name: str) -> str:
        return str((await self.client.get_workload(name))["status"])

    async def wait_status(self, name: str, status: str, timeout: float = 8.0) -> dict[str, Any]:
        async def reached() -> bool:
            return await self.status_of(name) == status

        await wait_for(reached, timeout=timeout, what=f"{name} to be {status}")
        return await self.client.get_workload(name)


async def raw_post(url: str, body: dict[str, Any], *, timeout: float = 10.0) -> httpx.Response:
    """One JSON-RPC POST as an MCP client sends it, without a session (for status checks)."""
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    async with httpx.AsyncClient(timeout=timeout) as http:
        return await http.post(url, json=body, headers=headers)


def socket_exists(home: Path) -> bool:
    return socket_path(home).exists()
