"""Reverse proxy with token injection, and the stdio bridge in front of it.

``run_stdio_bridge`` is imported lazily: it pulls in the MCP SDK's client stack, which
the daemon's hot path does not need, and importing it eagerly here would make
``python -m mcpkeeper.proxy.stdio_bridge`` warn about a module imported twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcpkeeper.proxy._guard import foreign_request
from mcpkeeper.proxy._replies import PROXY_ERROR_CODE
from mcpkeeper.proxy.app import ProxyApp, create_proxy_app, create_upstream_client, local_url_for
from mcpkeeper.proxy.client_gate import ClientTokenGate

if TYPE_CHECKING:
    from mcpkeeper.proxy.stdio_bridge import run_stdio_bridge

__all__ = [
    "PROXY_ERROR_CODE",
    "ClientTokenGate",
    "ProxyApp",
    "create_proxy_app",
    "create_upstream_client",
    "foreign_request",
    "local_url_for",
    "run_stdio_bridge",
]


def __getattr__(name: str) -> Any:
    if name == "run_stdio_bridge":
        from mcpkeeper.proxy.stdio_bridge import run_stdio_bridge

        return run_stdio_bridge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
