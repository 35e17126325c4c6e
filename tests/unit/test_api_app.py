"""The control API's routes and its hand-written OpenAPI description agree."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Route

from mcpkeeper.api.app import create_api_app
from mcpkeeper.api.openapi import OPENAPI
from mcpkeeper.workloads.manager import WorkloadManager

_ACTIONS = ("start", "stop", "restart", "reload-credentials")


async def test_every_route_and_method_is_described_in_openapi(tmp_path: Path) -> None:
    manager = WorkloadManager(tmp_path)
    try:
        app = create_api_app(manager, request_shutdown=lambda: None)
    finally:
        await manager.shutdown()
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route)
        if route.path == "/openapi.json":
            continue
        paths = (
            [route.path.replace("{action}", action) for action in _ACTIONS]
            if "{action}" in route.path
            else [route.path]
        )
        for path in paths:
            for method in route.methods or ():
                if method != "HEAD":
                    served.add((path, method.lower()))
    described = {(path, method) for path, item in OPENAPI["paths"].items() for method in item}
    assert served == described
