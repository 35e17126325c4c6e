"""Loopback listeners and uvicorn inside the running event loop, for every server mcpkeeper runs.

The daemon (control API, every workload's proxy), the login callback and the fixture
servers all serve ASGI apps the same way, so there is one implementation, here. This
package sits below every other layer: it imports nothing from mcpkeeper.
"""

from mcpkeeper.net.limits import DEFAULT_LIMITS, ListenerLimits
from mcpkeeper.net.server import InLoopServer, Lifespan, ServerStartError
from mcpkeeper.net.sockets import LOOPBACK, PortInUseError, bind_loopback, bind_tcp, bind_unix, free_port

__all__ = [
    "DEFAULT_LIMITS",
    "LOOPBACK",
    "InLoopServer",
    "Lifespan",
    "ListenerLimits",
    "PortInUseError",
    "ServerStartError",
    "bind_loopback",
    "bind_tcp",
    "bind_unix",
    "free_port",
]
