"""What the proxy tells whoever watches it (the daemon's metrics), and the no-op default.

The proxy knows nothing of Prometheus: the daemon passes an observer per workload, the
foreground proxy and the tests get :data:`NO_PROXY_OBSERVER`. Each call is a few
attribute reads and an addition in the metrics, so it is made on the hot path, once per
request, when the response starts (never per body chunk).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_PROXY_OBSERVER", "ProxyObserver"]


class ProxyObserver(Protocol):
    def response_started(self, status: int, seconds: float, kind: str | None) -> None:
        """A response began: its ``status``, ``seconds`` since the request arrived (the
        latency a client sees before the first byte), and ``kind`` when the proxy made the
        answer up itself (``auth_retrying``, ``unauthenticated``, ``upstream_unreachable``…;
        see :class:`~mcpkeeper.proxy._replies.LocalReply`), None for the upstream's own."""
        ...

    def upstream_broken(self) -> None:
        """An upstream response broke off after it had started (the client sees a cut stream)."""
        ...


class _NoProxyObserver:
    def response_started(self, status: int, seconds: float, kind: str | None) -> None:
        return None

    def upstream_broken(self) -> None:
        return None


NO_PROXY_OBSERVER: ProxyObserver = _NoProxyObserver()
