"""Client side of the control API, for the CLI (sync) and for async callers.

The daemon listens on ``<home>/run/daemon.sock``; only the same OS user can connect
(the socket is 0600 inside a 0700 directory), so there is no token to send. Every
endpoint is described once (:class:`_Call`) and sent by either client, so the sync and
async clients cannot drift apart.

Errors come back as one line: :class:`DaemonError` carries the daemon's own message and
HTTP status; :class:`DaemonUnavailableError` means nobody answers on the socket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from mcpkeeper.api.paths import API_PREFIX, daemon_log_path, socket_path
from mcpkeeper.api.socket_dir import UnsafeSocketDirError, verify_socket_dir
from mcpkeeper.exit_status import EXIT_ALREADY_RUNNING  # re-exported: the daemon exits with it
from mcpkeeper.state.paths import ensure_private_dir

__all__ = [
    "EXIT_ALREADY_RUNNING",
    "AsyncDaemonClient",
    "DaemonClient",
    "DaemonError",
    "DaemonUnavailableError",
    "ensure_daemon",
]

_BASE_URL = "http://mcpkeeper"
_DEFAULT_TIMEOUT = 30.0
_PING_TIMEOUT = 2.0
_START_TIMEOUT = 10.0
_POLL = 0.05


class DaemonError(Exception):
    """The daemon refused a request; ``status`` is its HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class DaemonUnavailableError(DaemonError):
    """Nothing answers on the daemon's socket (not running, or could not be started)."""


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)


def _health() -> _Call:
    return _Call("GET", "/health")


def _list(include_all: bool) -> _Call:
    return _Call("GET", "/workloads", params={"all": "true" if include_all else "false"})


def _get(name: str) -> _Call:
    return _Call("GET", f"/workloads/{name}")


def _create(name: str, remote_url: str, port: int | None, auth: bool, client_auth: bool) -> _Call:
    body = {"name": name, "remote_url": remote_url, "port": port, "auth": auth, "client_auth": client_auth}
    return _Call("POST", "/workloads", body)


def _action(name: str, action: str) -> _Call:
    return _Call("POST", f"/workloads/{name}/{action}")


def _remove(name: str) -> _Call:
    return _Call("DELETE", f"/workloads/{name}")


def _shutdown() -> _Call:
    return _Call("POST", "/shutdown")


def _dashboard_link() -> _Call:
    return _Call("POST", "/dashboard/link")


def _request(http: httpx.Client | httpx.AsyncClient, call: _Call, timeout: float | None) -> httpx.Request:
    request = http.build_request(call.method, API_PREFIX + call.path, json=call.body, params=call.params)
    if timeout is not None:
        request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
    return request


def _decode(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        message = str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        message = f"daemon answered HTTP {response.status_code}"
    raise DaemonError(message, response.status_code)


def _object(decoded: Any) -> dict[str, Any]:
    """A decoded answer that is a JSON object (every endpoint but ``DELETE`` answers one)."""
    result: dict[str, Any] = decoded
    return result


def _unavailable(home: Path, exc: Exception) -> DaemonUnavailableError:
    return DaemonUnavailableError(f"the mcpkeeper daemon is not answering on {socket_path(home)} ({exc})")


# Neither client uses TLS (plain HTTP over a Unix socket); verify=False only spares
# loading the CA bundle, which costs tens of milliseconds per client.
def _sync_transport(home: Path) -> httpx.HTTPTransport:
    return httpx.HTTPTransport(uds=_checked_socket(home), verify=False)


def _async_transport(home: Path) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(uds=_checked_socket(home), verify=False)


def _checked_socket(home: Path) -> str:
    try:
        return str(verify_socket_dir(home))
    except UnsafeSocketDirError as exc:
        raise DaemonUnavailableError(str(exc)) from None


class DaemonClient:
    """Blocking client for the CLI. Usable as a context manager; ``close()`` otherwise."""

    def __init__(self, home: Path, *, timeout: float = _DEFAULT_TIMEOUT) -> None:
        self.home = home
        self._http = httpx.Client(transport=_sync_transport(home), base_url=_BASE_URL, timeout=timeout)

    def _send(self, call: _Call, timeout: float | None = None) -> Any:
        request = _request(self._http, call, timeout)
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise _unavailable(self.home, exc) from None
        return _decode(response)

    def ping(self) -> bool:
        """True when a daemon answers the health check."""
        try:
            self._send(_health(), timeout=_PING_TIMEOUT)
        except DaemonError:
            return False
        return True

    def health(self) -> dict[str, Any]:
        return _object(self._send(_health()))

    def list_workloads(self, include_all: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._send(_list(include_all))["workloads"]
        return result

    def get_workload(self, name: str) -> dict[str, Any]:
        return _object(self._send(_get(name)))

    def create_workload(
        self,
        name: str,
        remote_url: str,
        *,
        port: int | None = None,
        auth: bool = True,
        client_auth: bool = False,
    ) -> dict[str, Any]:
        return _object(self._send(_create(name, remote_url, port, auth, client_auth)))

    def start_workload(self, name: str) -> dict[str, Any]:
        return _object(self._send(_action(name, "start")))

    def stop_workload(self, name: str) -> dict[str, Any]:
        return _object(self._send(_action(name, "stop")))

    def restart_workload(self, name: str) -> dict[str, Any]:
        return _object(self._send(_action(name, "restart")))

    def reload_credentials(self, name: str) -> dict[str, Any]:
        return _object(self._send(_action(name, "reload-credentials")))

    def remove_workload(self, name: str) -> None:
        self._send(_remove(name))

    def shutdown(self) -> None:
        self._send(_shutdown())

    def dashboard_link(self) -> dict[str, Any]:
        """A one-time URL of the dashboard (the daemon must serve the HTTP API)."""
        return _object(self._send(_dashboard_link()))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncDaemonClient:
    """The same endpoints for async callers (tests, the stdio bridge, a future TUI)."""

    def __init__(self, home: Path, *, timeout: float = _DEFAULT_TIMEOUT) -> None:
        self.home = home
        self._http = httpx.AsyncClient(transport=_async_transport(home), base_url=_BASE_URL, timeout=timeout)

    async def _send(self, call: _Call, timeout: float | None = None) -> Any:
        request = _request(self._http, call, timeout)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise _unavailable(self.home, exc) from None
        return _decode(response)

    async def ping(self) -> bool:
        try:
            await self._send(_health(), timeout=_PING_TIMEOUT)
        except DaemonError:
            return False
        return True

    async def health(self) -> dict[str, Any]:
        return _object(await self._send(_health()))

    async def list_workloads(self, include_all: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._send(_list(include_all)))["workloads"]
        return result

    async def get_workload(self, name: str) -> dict[str, Any]:
        return _object(await self._send(_get(name)))

    async def create_workload(
        self,
        name: str,
        remote_url: str,
        *,
        port: int | None = None,
        auth: bool = True,
        client_auth: bool = False,
    ) -> dict[str, Any]:
        return _object(await self._send(_create(name, remote_url, port, auth, client_auth)))

    async def start_workload(self, name: str) -> dict[str, Any]:
        return _object(await self._send(_action(name, "start")))

    async def stop_workload(self, name: str) -> dict[str, Any]:
        return _object(await self._send(_action(name, "stop")))

    async def restart_workload(self, name: str) -> dict[str, Any]:
        return _object(await self._send(_action(name, "restart")))

    async def reload_credentials(self, name: str) -> dict[str, Any]:
        return _object(await self._send(_action(name, "reload-credentials")))

    async def remove_workload(self, name: str) -> None:
        await self._send(_remove(name))

    async def shutdown(self) -> None:
        await self._send(_shutdown())

    async def dashboard_link(self) -> dict[str, Any]:
        return _object(await self._send(_dashboard_link()))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def daemon_command() -> list[str]:
    """How the CLI starts the daemon: this interpreter, so the same installation serves."""
    return [sys.executable, "-m", "mcpkeeper", "serve"]


def ensure_daemon(
    home: Path, *, timeout: float = _START_TIMEOUT, command: list[str] | None = None
) -> DaemonClient:
    """A client of the running daemon, starting one in the background first if none answers.

    The daemon is detached (its own session, output to ``<home>/logs/daemon.log``) so it
    outlives the CLI command that started it. If two CLI commands race to start it, the
    loser's daemon exits with :data:`EXIT_ALREADY_RUNNING` and both end up talking to
    the winner.
    """
    client = DaemonClient(home)
    if client.ping():
        return client
    process = _spawn(home, command or daemon_command())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.ping():
            return client
        code = process.poll()
        if code is not None and code != EXIT_ALREADY_RUNNING:
            client.close()
            raise DaemonUnavailableError(
                f"the mcpkeeper daemon exited at start (status {code}): {_last_line(daemon_log_path(home))}"
            )
        time.sleep(_POLL)
    client.close()
    raise DaemonUnavailableError(
        f"the mcpkeeper daemon did not answer within {timeout:g}s; see {daemon_log_path(home)}"
    )


def _spawn(home: Path, command: list[str]) -> subprocess.Popen[bytes]:
    ensure_private_dir(home)
    log_path = daemon_log_path(home)
    ensure_private_dir(log_path.parent)
    env = {**os.environ, "MCPKEEPER_HOME": str(home)}
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed by the terminal's Ctrl+C, survives the CLI
            env=env,
            cwd=str(home),
        )
    finally:
        os.close(fd)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return f"see {path}"
    return lines[-1][:300] if lines else f"see {path}"
