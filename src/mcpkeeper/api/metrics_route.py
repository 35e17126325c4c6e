"""``GET /metrics``: the daemon's registry, in the format the scraper asks for (text or OpenMetrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["metrics_route"]


def metrics_route(registry: CollectorRegistry) -> BaseRoute:
    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type, headers={"cache-control": "no-store"})

    return Route("/metrics", metrics, methods=["GET"])
