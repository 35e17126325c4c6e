"""How a workload is described to people and scripts: its local URL and the JSON wording.

The control API (``api/views``) and the CLI reading the state directory (``list``,
``status`` with the daemon down) must print the same facts the same way. Both import
this module, so it stays light: no HTTP stack, no pydantic (``list`` starts fast).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

__all__ = ["iso_utc", "local_url"]

# ``mcpkeeper.net.LOOPBACK``, where every workload's proxy listens; restated because
# importing ``mcpkeeper.net`` starts uvicorn's imports (a unit test keeps them equal).
_LOOPBACK = "127.0.0.1"


def local_url(remote_url: str, port: int | None) -> str | None:
    """The URL MCP clients use: the workload's loopback port with the remote's path and query.

    So ``/mcp`` locally is ``/mcp`` remotely (the rule of ``mcpkeeper.proxy.local_url_for``,
    which the proxy applies to a whole origin). None until the workload has a port.
    """
    if port is None:
        return None
    remote = urlsplit(remote_url)
    return urlunsplit(("http", f"{_LOOPBACK}:{port}", remote.path or "/", remote.query, ""))


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC ending in ``Z``: the form of every ``*_at`` field in our JSON."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
