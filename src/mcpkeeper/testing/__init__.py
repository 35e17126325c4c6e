"""Real fixture servers for tests, benchmarks and ``make demo`` (architecture.md §6).

Everything binds 127.0.0.1 only. ``mcpkeeper.testing.clock`` (the virtual clock) lives
next to these but is not imported here, so importing the servers stays cheap.
"""

from mcpkeeper.testing._serve import ServedApp, serve_asgi
from mcpkeeper.testing.auth_server import FixtureAuthServer
from mcpkeeper.testing.counters import TokenCounters
from mcpkeeper.testing.faults import FaultMode
from mcpkeeper.testing.mcp_server import FixtureMCPServer

__all__ = [
    "FaultMode",
    "FixtureAuthServer",
    "FixtureMCPServer",
    "ServedApp",
    "TokenCounters",
    "serve_asgi",
]
