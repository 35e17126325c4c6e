"""The control API's routes and its hand-written OpenAPI description agree."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Route

from mcpkeeper.api.app import create_api_app
from mcpkeeper.api.dashboard import DashboardSessions, dashboard_link_route, dashboard_routes
from mcpkeeper.api.metrics import DaemonMetrics
from mcpkeeper.api.metrics_route import metrics_route
from mcpkeeper.api.openapi import OPENAPI
from mcpkeeper.workloads.manager import WorkloadManager

_ACTIONS = ("start", "stop", "restart", "reload-credentials")


async def test_every_route_and_method_is_described_in_openapi(tmp_path: Path) -> None:
    manager = WorkloadManager(tmp_path)
    try:
        sessions = DashboardSessions("t" * 43)
        # The TCP listener's app, as the daemon builds it: every route the daemon serves anywhere.
        extra = [
            dashboard_link_route(sessions, lambda: None),
            metrics_route(DaemonMetrics(list).registry),
            *dashboard_routes(sessions),
        ]
        app = create_api_app(manager, request_shutdown=lambda: None, extra_routes=extra)
    finally:
        await manager.shutdown()
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route)
        if route.path == "/openapi.json" or route.path == "/" or route.path.startswith("/ui/"):
            continue  # the description itself, and the dashboard's page (HTML, not API)
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
