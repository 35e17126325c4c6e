"""The control API (``/api/v1beta/...``), served by the daemon on its Unix socket and,
with ``serve --api``, on loopback TCP behind a bearer token (:mod:`.http_listener`).

A thin HTTP face on :class:`~mcpkeeper.workloads.manager.WorkloadManager`: every
handler validates its input, makes one manager call and returns the workload's JSON
(:mod:`.views`, ToolHive's ``core.Workload`` fields and ours beside them). Errors are
one line, ``{"error": "..."}``, with the status the contract names: 404 unknown
workload, 409 duplicate name, 400 bad input (name, URL, port in use), 500 anything
unexpected. Tokens never appear: no view has one.

Besides ToolHive's routes (list, create, detail, ``/status``, stop/restart, delete,
``/logs``) there are ``/start``, ``/reload-credentials``, ``/login`` (a browser login the
daemon runs and reports, :mod:`mcpkeeper.workloads.login_sessions`) and ``/events``
(server-sent events for the dashboard, :mod:`.events`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from mcpkeeper import __version__
from mcpkeeper.api.events import EventHub
from mcpkeeper.api.log_stream import DEFAULT_TAIL, MAX_TAIL, follow_log, last_lines
from mcpkeeper.api.openapi import OPENAPI
from mcpkeeper.api.paths import API_PREFIX
from mcpkeeper.api.views import StoredGrantFacts, dashboard_row, workload_detail, workload_info
from mcpkeeper.auth.monitor import MonitorSnapshot
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.workloads.errors import (
    InvalidWorkloadError,
    WorkloadError,
    WorkloadExistsError,
    WorkloadNotFoundError,
)
from mcpkeeper.workloads.health import health_of
from mcpkeeper.workloads.info import DEFAULT_GROUP, iso_utc, unreadable_config_info
from mcpkeeper.workloads.login_sessions import LoginSession, LoginSessions
from mcpkeeper.workloads.logs import workload_log_file
from mcpkeeper.workloads.manager import WorkloadManager

__all__ = ["create_api_app"]

log = logging.getLogger(__name__)

_MAX_BODY = 64 * 1024


class _BodyTooLarge(InvalidWorkloadError):
    """A request body over :data:`_MAX_BODY`: refused before (or while) it is read, never buffered whole."""


class _NotServed(WorkloadError):
    """Something this daemon was not set up to do (a login without a login service)."""


_STATUS_OF: list[tuple[type[WorkloadError], int]] = [
    (_BodyTooLarge, 413),
    (_NotServed, 501),
    (WorkloadNotFoundError, 404),
    (WorkloadExistsError, 409),
    (InvalidWorkloadError, 400),
]

Handler = Callable[[Request], Awaitable[Response]]


def create_api_app(
    manager: WorkloadManager,
    *,
    request_shutdown: Callable[[], None],
    logins: LoginSessions | None = None,
    events: EventHub | None = None,
    extra_routes: list[BaseRoute] | None = None,
) -> Starlette:
    """The control API over ``manager``; ``request_shutdown`` makes the daemon exit.

    Without ``logins`` the daemon starts no login (``/login`` answers 501); without
    ``events`` there is no ``/events`` stream. ``extra_routes`` come first (the TCP
    listener's ``/metrics`` and dashboard).
    """
    return Starlette(
        routes=[*(extra_routes or []), *control_routes(manager, request_shutdown, logins, events)],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
    )


def control_routes(
    manager: WorkloadManager,
    request_shutdown: Callable[[], None],
    logins: LoginSessions | None = None,
    events: EventHub | None = None,
) -> list[BaseRoute]:
    """The routes of the control API (shared by the Unix socket and the TCP listener)."""
    api = _ControlApi(manager, request_shutdown, logins, events or EventHub())
    prefix = f"{API_PREFIX}/workloads"
    return [
        Route(f"{API_PREFIX}/health", api.health, methods=["GET"]),
        Route(prefix, api.list_workloads, methods=["GET"]),
        Route(prefix, api.create, methods=["POST"]),
        Route(f"{prefix}/{{name}}", api.detail, methods=["GET"]),
        Route(f"{prefix}/{{name}}", api.remove, methods=["DELETE"]),
        Route(f"{prefix}/{{name}}/status", api.status, methods=["GET"]),
        Route(f"{prefix}/{{name}}/logs", api.logs, methods=["GET"]),
        Route(f"{prefix}/{{name}}/login", api.login_state, methods=["GET"]),
        Route(f"{prefix}/{{name}}/login", api.login, methods=["POST"]),
        Route(f"{prefix}/{{name}}/{{action}}", api.action, methods=["POST"]),
        Route(f"{API_PREFIX}/events", api.events, methods=["GET"]),
        Route(f"{API_PREFIX}/shutdown", api.shutdown, methods=["POST"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]


class _ControlApi:
    def __init__(
        self,
        manager: WorkloadManager,
        request_shutdown: Callable[[], None],
        logins: LoginSessions | None,
        events: EventHub,
    ) -> None:
        self._manager = manager
        self._request_shutdown = request_shutdown
        self._logins = logins
        self._events = events
        self._actions: dict[str, Callable[[str], Awaitable[Any]]] = {
            "start": manager.start,
            "stop": manager.stop,
            "restart": manager.restart,
            "reload-credentials": self._reload,
        }

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "pid": os.getpid(), "version": __version__})

    async def list_workloads(self, request: Request) -> Response:
        include_all = request.query_params.get("all", "false").lower() in ("1", "true", "yes")
        group = request.query_params.get("group")
        if group is not None and group != DEFAULT_GROUP:  # ToolHive's answer for a group it lacks
            return _error(404, f"group {group!r} not found; mcpkeeper has only {DEFAULT_GROUP!r}")
        listing = self._manager.scan_configs()
        rows = [unreadable_config_info(corrupt) for corrupt in listing.corrupted]  # shown until dealt with
        for config in listing.configs:
            info = self._info(config.name, config)
            if include_all or not _hidden(info["status"]):
                rows.append(info)
        rows.sort(key=lambda row: str(row["name"]))
        return JSONResponse({"workloads": rows})

    def _info(self, name: str, config: Any = None) -> dict[str, Any]:
        config = config if config is not None else self._manager.config(name)
        return workload_info(config, self._manager.status(name), self._manager.started_at(name))

    def dashboard_view(self) -> dict[str, Any]:
        """Every workload as the dashboard shows it (see :func:`.views.dashboard_row`)."""
        listing = self._manager.scan_configs()
        rows = [unreadable_config_info(corrupt) for corrupt in listing.corrupted]
        for config in listing.configs:
            name = config.name
            login = self._logins.get(name) if self._logins is not None else None
            rows.append(
                dashboard_row(
                    self._info(name, config),
                    self._auth_view(name, config),
                    self._manager.history(name),
                    login.to_json() if login is not None else None,
                )
            )
        rows.sort(key=lambda row: str(row["name"]))
        return {"workloads": rows}

    def _auth_view(self, name: str, config: Any) -> MonitorSnapshot | StoredGrantFacts | None:
        auth: MonitorSnapshot | StoredGrantFacts | None = self._manager.snapshot(name)
        if auth is None and config.auth:
            auth = StoredGrantFacts(self._manager.stored_token(name))
        return auth

    async def detail(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await _guarded(lambda: self._detail(name))

    async def _detail(self, name: str) -> Response:
        config = self._manager.config(name)
        body = workload_detail(
            config,
            self._manager.status(name),
            self._auth_view(name, config),
            self._manager.history(name),
            self._manager.started_at(name),
        )
        return JSONResponse(body)

    async def status(self, request: Request) -> Response:
        """ToolHive's ``/{name}/status`` (``status``), with the reason, health and time beside it."""
        name = request.path_params["name"]

        async def act() -> Response:
            self._manager.config(name)
            record = self._manager.status(name)
            status = record.status if record is not None else WorkloadStatus.UNKNOWN
            return JSONResponse(
                {
                    "status": status.value,
                    "status_context": record.status_context
                    if record is not None
                    else "no status recorded yet",
                    "health": health_of(status).value,
                    "updated_at": iso_utc(record.updated_at) if record is not None else None,
                }
            )

        return await _guarded(act)

    async def logs(self, request: Request) -> Response:
        name = request.path_params["name"]
        params = request.query_params
        follow = params.get("follow", "false").lower() in ("1", "true", "yes")
        tail_text = params.get("tail", str(DEFAULT_TAIL))
        if not tail_text.isdigit() or int(tail_text) > MAX_TAIL:
            return _error(400, f"tail must be a whole number from 0 to {MAX_TAIL}")

        async def act() -> Response:
            self._manager.config(name)  # 404 for an unknown workload
            path = workload_log_file(self._manager.home, name)
            text, position = last_lines(path, int(tail_text))
            headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
            if not follow:
                return Response(text, media_type="text/plain; charset=utf-8", headers=headers)

            async def body() -> Any:
                yield text
                async for chunk in follow_log(path, position, self._events.closing):
                    yield chunk

            return StreamingResponse(body(), media_type="text/plain; charset=utf-8", headers=headers)

        return await _guarded(act)

    async def login(self, request: Request) -> Response:
        """Start a browser login in the daemon (or join the waiting one); 202 with its URL."""
        name = request.path_params["name"]

        async def act() -> Response:
            config = self._manager.config(name)
            session = await self._start_login(config)
            return _login_response(session)

        return await _guarded(act)

    async def login_state(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def act() -> Response:
            self._manager.config(name)
            session = self._logins.get(name) if self._logins is not None else None
            if session is None:
                return _error(404, f"no login was started for {name!r}; POST to this URL starts one")
            return JSONResponse(session.to_json())

        return await _guarded(act)

    async def _start_login(self, config: Any) -> LoginSession:
        if self._logins is None:
            raise _NotServed(f"this daemon starts no logins; run `mcpkeeper login {config.name}`")
        return await self._logins.start(config)

    async def events(self, request: Request) -> Response:
        if self._events.full:
            return _error(503, "too many event streams are open; close one and retry")
        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(
            self._events.stream(self.dashboard_view), media_type="text/event-stream", headers=headers
        )

    async def create(self, request: Request) -> Response:
        return await _guarded(lambda: self._create(request))

    async def _create(self, request: Request) -> Response:
        body = await _json_object(request)
        name = _field(body, "name", str)
        # ToolHive's createRequest names the remote ``url`` and the local port ``proxy_port``.
        remote_url = _field(body, "remote_url", str, required=False) or _field(
            body, "url", str, required=False
        )
        if remote_url is None:
            raise InvalidWorkloadError("missing field 'remote_url' (or ToolHive's 'url')")
        port = _field(body, "port", int, required=False)
        if port is None:
            port = _field(body, "proxy_port", int, required=False)
        auth = _field(body, "auth", bool, required=False)
        client_auth = _field(body, "client_auth", bool, required=False)
        login = _field(body, "login", bool, required=False) is True
        if login and self._logins is None:
            raise _NotServed("this daemon starts no logins; run `mcpkeeper login` first")
        if login and auth is False:
            raise InvalidWorkloadError("'login' needs a workload with auth")
        config = await self._manager.create(
            name, remote_url, port=port, auth=True if auth is None else auth, client_auth=client_auth is True
        )
        info = self._info(name, config)
        if login and self._manager.stored_token(name) is None:
            info["login"] = (await self._start_login(config)).to_json()
        return JSONResponse(info, status_code=201)

    async def action(self, request: Request) -> Response:
        name, verb = request.path_params["name"], request.path_params["action"]
        run = self._actions.get(verb)
        if run is None:
            return _error(404, f"unknown action {verb!r}; use one of: {', '.join(self._actions)}")

        async def act() -> Response:
            self._manager.config(name)  # 404 before anything else
            await run(name)
            return JSONResponse(self._info(name))

        return await _guarded(act)

    async def _reload(self, name: str) -> None:
        if not await self._manager.reload_credentials(name):
            raise InvalidWorkloadError(f"no login stored for {name!r}; run `mcpkeeper login {name}` first")

    async def remove(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def act() -> Response:
            await self._manager.remove(name)
            if self._logins is not None:
                self._logins.forget(name)
            return Response(status_code=204)

        return await _guarded(act)

    async def shutdown(self, request: Request) -> Response:
        log.info("shutdown requested over the control API")
        self._request_shutdown()
        return JSONResponse({"status": "shutting down"}, status_code=202)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)


def _login_response(session: LoginSession) -> Response:
    """202 while the login waits for the browser (its URL in the body), 200 once it ended."""
    body = session.to_json()
    return JSONResponse(body, status_code=202 if body["state"] == "pending" else 200)


def _hidden(status: str) -> bool:
    return status in ("stopped", "removing")


async def _guarded(handler: Callable[[], Awaitable[Response]]) -> Response:
    """Run ``handler``, turning the manager's refusals into their HTTP status."""
    try:
        return await handler()
    except WorkloadError as exc:
        for kind, status in _STATUS_OF:
            if isinstance(exc, kind):
                response = _error(status, str(exc))
                if status == 413:  # the rest of the body is not read: this connection is done
                    response.headers["connection"] = "close"
                return response
        return _error(400, str(exc))


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await _bounded_body(request)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidWorkloadError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidWorkloadError("request body must be a JSON object")
    return body


async def _bounded_body(request: Request) -> bytes:
    """The body, at most :data:`_MAX_BODY` bytes: a larger ``Content-Length`` is refused
    before a byte of the body is read, a chunked body as soon as it passes the limit."""
    too_large = f"request body too large (limit {_MAX_BODY // 1024} kB)"
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > _MAX_BODY):
        raise _BodyTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            raise _BodyTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _field(body: dict[str, Any], key: str, kind: type[Any], *, required: bool = True) -> Any:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidWorkloadError(f"missing field {key!r}")
        return None
    # bool is an int in Python; a port of `true` is a mistake, not port 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidWorkloadError(f"field {key!r} must be a {kind.__name__}")
    return value


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("control API: %s %s failed", request.method, request.url.path)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")
