"""A real gateway for tests: ``redis-server`` on loopback, replica processes, a light upstream.

``redis-server`` is Debian's package (``.ci/run`` installs it). Missing, the tests fail
with a message saying so: a skipped gateway test would hide that the gateway was never
tested.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcpkeeper.auth.credentials import StoredLogin
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.auth.token import Token
from mcpkeeper.net import DEFAULT_LIMITS, InLoopServer, bind_loopback, free_port
from mcpkeeper.state.redis_store import RedisStore
from mcpkeeper.state.sealing import KeyRing, new_key
from mcpkeeper.state.workload_store import WorkloadConfig
from mcpkeeper.testing import FixtureAuthServer
from tests.integration.daemon_support import daemon_env, wait_for

API_KEY = "test-caller-key-0123456789abcdef"
CALLER = "alice"

_REDIS_START = 10.0
_MANY = dataclasses.replace(DEFAULT_LIMITS, max_connections=2048)


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (.ci/run does)")
    return found


class RedisServer:
    """``redis-server`` on 127.0.0.1, no persistence, in a temp dir; stop and start on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--protected-mode",
            "yes",
        ]
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - kept for the process's life
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        await wait_for(self._answers, timeout=_REDIS_START, what="redis-server to answer")
        return self

    async def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None


def keyring_env() -> dict[str, str]:
    return {"MCPKEEPER_STORE_KEY": KEY}


KEY = new_key()


def ring() -> KeyRing:
    return KeyRing.from_env(keyring_env())


class Upstream:
    """A protected resource as light as possible: 200 with the token's claims, 401 without a live token.

    The gateway is what is measured, not an MCP SDK server: every request is one token check.
    """

    def __init__(self, auth: FixtureAuthServer) -> None:
        self.auth = auth
        self.requests = 0
        self.refused = 0
        self._server: InLoopServer | None = None
        self._port = 0

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        self.requests += 1
        header = request.headers.get("authorization", "")
        claims = self.auth.verify_access_token(header.removeprefix("Bearer ").strip())
        if claims is None:
            self.refused += 1
            response: Response = JSONResponse({"error": "invalid_token"}, status_code=401)
        else:
            response = JSONResponse({"jsonrpc": "2.0", "id": 1, "result": {"ok": True}})
        await response(scope, receive, send)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/mcp"

    async def __aenter__(self) -> Upstream:
        # Three replicas with 200 clients each hold up to 600 connections to it.
        sock = bind_loopback(0)
        self._port = sock.getsockname()[1]
        self._server = InLoopServer(self._app, sock, name="upstream", lifespan="off", limits=_MANY)
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.stop()


async def seed(redis_url: str, auth: FixtureAuthServer, upstream: Upstream, names: list[str]) -> None:
    """Put workloads and their logins in the shared store, as ``mcpkeeper store push`` does."""
    store = RedisStore(redis_url, ring())
    await store.start()
    try:
        for name in names:
            client_id = f"client-{name}"
            response = auth.mint(client_id, resource=upstream.url)
            now = time.time()
            token = Token(
                access_token=response["access_token"],
                refresh_token=response.get("refresh_token"),
                expires_at=now + float(response["expires_in"]),
                scope=response.get("scope"),
                issued_at=now,
            )
            login = StoredLogin(
                remote_url=upstream.url,
                issuer=auth.issuer,
                authorization_endpoint=auth.authorization_endpoint,
                token_endpoint=auth.token_endpoint,
                client=ClientRegistration(client_id=client_id),
                resource=upstream.url,
                scopes=("mcp",),
                token=token,
                saved_at=now,
            )
            store.secret_backend.write(name, json.dumps(login.to_dict()))
            store.workloads.put(WorkloadConfig(name=name, remote_url=upstream.url, port=free_port()))
    finally:
        await store.aclose(flush_timeout=10.0)
    assert store.unsent == 0, "the shared store did not take the seed"


def write_gateway_files(directory: Path, names: list[str]) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    keys = directory / "api-keys"
    keys.write_text(f"{CALLER} {API_KEY}\nbob bob-key-0123456789abcdef0\n")
    keys.chmod(0o600)
    allow = directory / "allow.json"
    allow.write_text(json.dumps({name: [CALLER] for name in names}))
    return keys, allow


class Replica:
    """One ``mcpkeeper serve --store redis://… --listen 127.0.0.1:PORT`` process."""

    def __init__(self, home: Path, redis_url: str, files: tuple[Path, Path], env: dict[str, str]) -> None:
        self.home = home
        self.redis_url = redis_url
        self.files = files
        self.port = free_port()
        self.env = daemon_env(home, {**keyring_env(), "MCPKEEPER_VMCP_PORT": "off", **env})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def spawn(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "replica.log", "ab")  # noqa: SIM115
        keys, allow = self.files
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcpkeeper",
                "serve",
                "--store",
                self.redis_url,
                "--listen",
                f"127.0.0.1:{self.port}",
                "--api-keys",
                str(keys),
                "--allow",
                str(allow),
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    async def wait_serving(self, name: str, timeout: float = 30.0) -> None:
        async def ok() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"replica exited with {self.process.returncode}:\n{self.log()}")
            try:
                response = await call(self.base, name, timeout=2.0)
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        await wait_for(ok, timeout=timeout, interval=0.1, what=f"replica {self.port} to serve {name}")

    def log(self) -> str:
        try:
            return (self.home / "replica.log").read_text()[-3000:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "hi"}},
}


async def call(
    base: str,
    name: str,
    *,
    key: str | None = API_KEY,
    http: httpx.AsyncClient | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    if http is not None:
        return await http.post(f"{base}/{name}/mcp", json=BODY, headers=headers)
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await client.post(f"{base}/{name}/mcp", json=BODY, headers=headers)
