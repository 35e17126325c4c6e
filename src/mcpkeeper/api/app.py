"""The control API (``/api/v1beta/...``), served by the daemon on its Unix socket.

A thin HTTP face on :class:`~mcpkeeper.workloads.manager.WorkloadManager`: every
handler validates its input, makes one manager call and returns the workload's JSON
(:mod:`.views`). Errors are one line, ``{"error": "..."}``, with the status the
contract names: 404 unknown workload, 409 duplicate name, 400 bad input (name, URL,
port in use), 500 anything unexpected. Tokens never appear: no view has one.
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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpkeeper import __version__
from mcpkeeper.api.openapi import OPENAPI
from mcpkeeper.api.paths import API_PREFIX
from mcpkeeper.api.views import StoredGrantFacts, workload_detail, workload_info
from mcpkeeper.auth.monitor import MonitorSnapshot
from mcpkeeper.workloads.errors import (
    InvalidWorkloadError,
    WorkloadError,
    WorkloadExistsError,
    WorkloadNotFoundError,
)
from mcpkeeper.workloads.manager import WorkloadManager

__all__ = ["create_api_app"]

log = logging.getLogger(__name__)

_MAX_BODY = 64 * 1024
_STATUS_OF: list[tuple[type[WorkloadError], int]] = [
    (WorkloadNotFoundError, 404),
    (WorkloadExistsError, 409),
    (InvalidWorkloadError, 400),
]

Handler = Callable[[Request], Awaitable[Response]]


def create_api_app(manager: WorkloadManager, *, request_shutdown: Callable[[], None]) -> Starlette:
    """The control API over ``manager``; ``request_shutdown`` makes the daemon exit."""
    api = _ControlApi(manager, request_shutdown)
    routes = [
        Route(f"{API_PREFIX}/health", api.health, methods=["GET"]),
        Route(f"{API_PREFIX}/workloads", api.list_workloads, methods=["GET"]),
        Route(f"{API_PREFIX}/workloads", api.create, methods=["POST"]),
        Route(f"{API_PREFIX}/workloads/{{name}}", api.detail, methods=["GET"]),
        Route(f"{API_PREFIX}/workloads/{{name}}", api.remove, methods=["DELETE"]),
        Route(f"{API_PREFIX}/workloads/{{name}}/{{action}}", api.action, methods=["POST"]),
        Route(f"{API_PREFIX}/shutdown", api.shutdown, methods=["POST"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
    )


class _ControlApi:
    def __init__(self, manager: WorkloadManager, request_shutdown: Callable[[], None]) -> None:
        self._manager = manager
        self._request_shutdown = request_shutdown
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
        rows = []
        for config in self._manager.list_configs():
            info = workload_info(config, self._manager.status(config.name))
            if include_all or not _hidden(info["status"]):
                rows.append(info)
        return JSONResponse({"workloads": rows})

    async def detail(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await _guarded(lambda: self._detail(name))

    async def _detail(self, name: str) -> Response:
        config = self._manager.config(name)
        auth: MonitorSnapshot | StoredGrantFacts | None = self._manager.snapshot(name)
        if auth is None and config.auth:
            auth = StoredGrantFacts(self._manager.stored_token(name))
        body = workload_detail(config, self._manager.status(name), auth, self._manager.history(name))
        return JSONResponse(body)

    async def create(self, request: Request) -> Response:
        return await _guarded(lambda: self._create(request))

    async def _create(self, request: Request) -> Response:
        body = await _json_object(request)
        name = _field(body, "name", str)
        remote_url = _field(body, "remote_url", str)
        port = _field(body, "port", int, required=False)
        auth = _field(body, "auth", bool, required=False)
        config = await self._manager.create(
            name, remote_url, port=port, auth=True if auth is None else auth
        )
        return JSONResponse(workload_info(config, self._manager.status(name)), status_code=201)

    async def action(self, request: Request) -> Response:
        name, verb = request.path_params["name"], request.path_params["action"]
        run = self._actions.get(verb)
        if run is None:
            return _error(404, f"unknown action {verb!r}; use one of: {', '.join(self._actions)}")

        async def act() -> Response:
            self._manager.config(name)  # 404 before anything else
            await run(name)
            return JSONResponse(workload_info(self._manager.config(name), self._manager.status(name)))

        return await _guarded(act)

    async def _reload(self, name: str) -> None:
        if not await self._manager.reload_credentials(name):
            raise InvalidWorkloadError(f"no login stored for {name!r}; run `mcpkeeper login {name}` first")

    async def remove(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def act() -> Response:
            await self._manager.remove(name)
            return Response(status_code=204)

        return await _guarded(act)

    async def shutdown(self, request: Request) -> Response:
        log.info("shutdown requested over the control API")
        self._request_shutdown()
        return JSONResponse({"status": "shutting down"}, status_code=202)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)


def _hidden(status: str) -> bool:
    return status in ("stopped", "removing")


async def _guarded(handler: Callable[[], Awaitable[Response]]) -> Response:
    """Run ``handler``, turning the manager's refusals into their HTTP status."""
    try:
        return await handler()
    except WorkloadError as exc:
        for kind, status in _STATUS_OF:
            if isinstance(exc, kind):
                return _error(status, str(exc))
        return _error(400, str(exc))


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise InvalidWorkloadError("request body too large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidWorkloadError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidWorkloadError("request body must be a JSON object")
    return body


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
