"""How a workload is described to people and scripts: its local URL and its JSON.

The control API (``api/views``) and the CLI reading the state directory (``list``,
``status`` with the daemon down) must print the same facts the same way: WorkloadInfo
and the history are built here, once. Both import this module, so it stays light: no
HTTP stack, no pydantic (``list`` starts fast).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from mcpkeeper.workloads.health import health_of

if TYPE_CHECKING:
    from mcpkeeper.state import CorruptFile
    from mcpkeeper.state.history import Transition

__all__ = [
    "DEFAULT_GROUP",
    "Configured",
    "history_json",
    "info_json",
    "iso_utc",
    "local_url",
    "unreadable_config_info",
    "unreadable_config_reason",
]

# ``mcpkeeper.net.LOOPBACK``, where every workload's proxy listens; restated because
# importing ``mcpkeeper.net`` starts uvicorn's imports (a unit test keeps them equal).
_LOOPBACK = "127.0.0.1"

#: ToolHive's group of workloads created without one; mcpkeeper has no groups.
DEFAULT_GROUP = "default"


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


class Configured(Protocol):
    """What WorkloadInfo takes from a workload's config (a ``WorkloadConfig``, a CLI row…)."""

    @property
    def name(self) -> str: ...
    @property
    def remote_url(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def transport(self) -> str | None: ...
    @property
    def created_at(self) -> datetime | None: ...


def info_json(
    config: Configured,
    *,
    status: str,
    status_context: str,
    updated_at: datetime | None,
    pid: int | None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """WorkloadInfo: the row of ``list`` and of ``GET /workloads`` (``url`` and ``health`` derived).

    The fields ToolHive's ``core.Workload`` has carry its names and meanings, so tools
    written for ToolHive's API read ours: ``package`` is ``"remote"`` and ``remote`` true
    (what ToolHive reports for a remote workload), ``transport_type`` and ``proxy_mode``
    the transport (a direct transport is its own proxy mode), ``group`` ``"default"``
    (mcpkeeper has no groups), ``labels`` and ``tools`` (ToolHive's tool filter) empty.
    Ours stand beside them: ``remote_url``, ``transport`` (as before), ``updated_at``,
    ``health``, ``pid``.
    """
    remote_url, port = config.remote_url, config.port
    return {
        "name": config.name,
        "package": "remote",
        "remote": True,
        "status": str(status),
        "status_context": status_context,
        "remote_url": remote_url,
        "url": local_url(remote_url, port) if remote_url is not None else None,
        "port": port,
        "transport_type": config.transport,
        "proxy_mode": config.transport,
        "transport": config.transport,
        "group": DEFAULT_GROUP,
        "labels": {},
        "tools": [],
        "created_at": _iso_or_none(config.created_at),
        "started_at": _iso_or_none(started_at),
        "updated_at": _iso_or_none(updated_at),
        "health": health_of(status).value,
        "pid": pid,
    }


def unreadable_config_reason(corrupt: CorruptFile) -> str:
    """Why a workload shows as ``unknown``: its config was unreadable and moved aside (by anyone)."""
    return f"config {corrupt.describe()}; repair it and move it back, or `mcpkeeper rm {corrupt.name}`"


@dataclass(frozen=True, slots=True)
class _Unreadable:
    name: str
    remote_url: str | None = None
    port: int | None = None
    transport: str | None = None
    created_at: datetime | None = None


def unreadable_config_info(corrupt: CorruptFile) -> dict[str, Any]:
    """WorkloadInfo of a workload whose config is unreadable: ``unknown``, and what to do."""
    reason = unreadable_config_reason(corrupt)
    unreadable = _Unreadable(corrupt.name)
    return info_json(unreadable, status="unknown", status_context=reason, updated_at=None, pid=None)


def history_json(history: Iterable[Transition]) -> list[dict[str, Any]]:
    """Status transitions, oldest first, as WorkloadDetail's ``history``."""
    return [
        {
            "status": t.status.value,
            "reason": t.status_context,
            "previous_status": t.previous_status.value if t.previous_status is not None else None,
            "at": iso_utc(t.at),
        }
        for t in history
    ]


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)
