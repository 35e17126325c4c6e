"""Workload health -> what the aggregated endpoint does, and the refusals it answers with."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest

from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.vmcp.policy import Behaviour, behaviour_of
from mcpkeeper.vmcp.results import RETRY_AFTER_META, STATUS_META, WORKLOAD_META, refusal, tool_error
from mcpkeeper.vmcp.view import WorkloadView

_ALL = Behaviour(listed=True, forward=True, fetch=True)
_CACHED_REFUSED = Behaviour(listed=True, forward=False, fetch=False)
_CACHED_FORWARDED = Behaviour(listed=True, forward=True, fetch=False)
_HIDDEN = Behaviour(listed=False, forward=False, fetch=False)

_EXPECTED = {
    WorkloadStatus.RUNNING: _ALL,
    WorkloadStatus.AUTH_RETRYING: _CACHED_FORWARDED,  # the proxy answers 503 + Retry-After at once
    WorkloadStatus.UNAUTHENTICATED: _CACHED_REFUSED,
    WorkloadStatus.STARTING: _CACHED_FORWARDED,
    WorkloadStatus.UNKNOWN: _CACHED_FORWARDED,
    WorkloadStatus.UNHEALTHY: _HIDDEN,
    WorkloadStatus.STOPPED: _HIDDEN,
    WorkloadStatus.ERROR: _HIDDEN,
    WorkloadStatus.STOPPING: _HIDDEN,
    WorkloadStatus.REMOVING: _HIDDEN,
    WorkloadStatus.POLICY_STOPPED: _HIDDEN,
}


def _view(status: WorkloadStatus, **kwargs: Any) -> WorkloadView:
    return WorkloadView(
        name="notes", url="http://127.0.0.1:1/mcp", transport="streamable-http", status=status, **kwargs
    )


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def test_every_status_has_a_behaviour() -> None:
    assert set(_EXPECTED) == set(WorkloadStatus)


@pytest.mark.parametrize(("status", "expected"), list(_EXPECTED.items()))
def test_behaviour_follows_health(status: WorkloadStatus, expected: Behaviour) -> None:
    assert behaviour_of(_view(status)) == expected


def test_a_tool_error_carries_status_and_retry_after_in_data_and_meta() -> None:
    result = tool_error(
        "workload 'notes' has no valid token while authorization is retried",
        workload="notes",
        status="auth_retrying",
        retry_after=2.2,
    )

    assert result.is_error
    assert _text(result) == "workload 'notes' has no valid token while authorization is retried"
    assert result.meta == {WORKLOAD_META: "notes", STATUS_META: "auth_retrying", RETRY_AFTER_META: 3}
    assert result.structured_content == {
        "error": _text(result),
        "workload": "notes",
        "status": "auth_retrying",
        "retry_after": 3,  # rounded up: never too early
    }


def test_a_tool_error_without_retry_after_has_none() -> None:
    result = tool_error("gone", workload="notes", status="upstream_unreachable")
    assert result.meta is not None and RETRY_AFTER_META not in result.meta
    assert isinstance(result.structured_content, dict) and "retry_after" not in result.structured_content


@pytest.mark.parametrize(
    "reason",
    ["refresh token rejected (invalid_grant)", "no stored login; run `mcpkeeper login notes`"],
)
def test_an_unauthenticated_refusal_says_to_log_in_once(reason: str) -> None:
    result = refusal(_view(WorkloadStatus.UNAUTHENTICATED, reason=reason))
    assert result.is_error
    assert _text(result).count("mcpkeeper login notes") == 1
    assert result.meta is not None and RETRY_AFTER_META not in result.meta


def test_a_stopped_workload_refusal_says_how_to_start_it() -> None:
    result = refusal(_view(WorkloadStatus.STOPPED, reason="stopped by the user"))
    assert "not running (status stopped: stopped by the user)" in _text(result)
    assert "mcpkeeper start notes" in _text(result)
    errored = refusal(_view(WorkloadStatus.ERROR, reason="failed 11 times"))
    assert "status error: failed 11 times" in _text(errored) and "mcpkeeper start" not in _text(errored)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    for given, shown in ((0.0, 1), (0.2, 1), (1.0, 1), (1.01, 2), (59.5, 60)):
        result = tool_error("x", workload="w", status="auth_retrying", retry_after=given)
        assert result.meta is not None and result.meta[RETRY_AFTER_META] == shown
