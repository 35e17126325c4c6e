"""Moved to :mod:`mcpkeeper.net`; these names stay importable from here for older importers."""

from mcpkeeper.net import (
    LOOPBACK,
    InLoopServer,
    Lifespan,
    PortInUseError,
    ServerStartError,
    bind_loopback,
    bind_unix,
    free_port,
)

__all__ = [
    "LOOPBACK",
    "InLoopServer",
    "Lifespan",
    "PortInUseError",
    "ServerStartError",
    "bind_loopback",
    "bind_unix",
    "free_port",
]
