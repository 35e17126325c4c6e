"""The tool results the aggregated endpoint makes up itself: refusals and backend failures.

They are MCP *tool* errors (``isError: true``), not protocol errors: the tool exists, it
just cannot run now, and a model reads the text and can act on it (wait, or tell the
user to log in). The same facts are machine-readable twice, for clients that look in
either place: in ``structuredContent`` and in ``_meta`` under ``mcpkeeper/`` keys.
``retry_after`` is whole seconds (at least 1), present only when waiting will help.
"""

from __future__ import annotations

import math
from typing import Any

import mcp_types as types

from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.vmcp.view import WorkloadView
from mcpkeeper.workloads.health import Health

__all__ = [
    "RETRY_AFTER_META",
    "STATUS_META",
    "WORKLOAD_META",
    "refusal",
    "retry_after_seconds",
    "tool_error",
]

RETRY_AFTER_META = "mcpkeeper/retry_after"
STATUS_META = "mcpkeeper/status"
WORKLOAD_META = "mcpkeeper/workload"


def retry_after_seconds(seconds: float | None) -> int | None:
    """Whole seconds, rounded up and at least 1 (a client told "0" would spin); None stays None."""
    if seconds is None or math.isnan(seconds):
        return None
    return max(1, math.ceil(seconds))


def tool_error(
    message: str, *, workload: str, status: str, retry_after: float | None = None
) -> types.CallToolResult:
    """A tool error result carrying ``status`` and ``retry_after`` as data as well as text."""
    seconds = retry_after_seconds(retry_after)
    data: dict[str, Any] = {"error": message, "workload": workload, "status": status}
    meta: dict[str, Any] = {WORKLOAD_META: workload, STATUS_META: status}
    if seconds is not None:
        data["retry_after"] = seconds
        meta[RETRY_AFTER_META] = seconds
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)],
        structured_content=data,
        is_error=True,
        _meta=meta,
    )


def refusal(view: WorkloadView) -> types.CallToolResult:
    """Why a call to ``view``'s tool is not forwarded (unauthenticated or not running), and the cure."""
    name, reason = view.name, view.reason.rstrip(".")
    because = f" ({reason})" if reason else ""
    if view.health is Health.UNAUTHENTICATED:
        hint = "" if f"mcpkeeper login {name}" in reason else f"; run `mcpkeeper login {name}`"
        return tool_error(
            f"workload {name!r} is not authenticated{because}{hint}", workload=name, status=view.status.value
        )
    hint = f"; start it with `mcpkeeper start {name}`" if view.status is WorkloadStatus.STOPPED else ""
    detail = f"{view.status.value}: {reason}" if reason else view.status.value
    return tool_error(
        f"workload {name!r} is not running (status {detail}){hint}",
        workload=name,
        status=view.status.value,
    )
