"""The JSON shapes of the control API, built from a config, a status and a snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from mcpkeeper.api.views import StoredGrantFacts, workload_detail, workload_info
from mcpkeeper.auth.monitor import AuthState, MonitorSnapshot
from mcpkeeper.auth.token import Token
from mcpkeeper.state.history import Transition
from mcpkeeper.state.status_store import StatusRecord
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig

_AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
_CONFIG = WorkloadConfig(
    name="notes", remote_url="https://mcp.example.com/v1/mcp?tenant=a", port=41234, created_at=_AT
)


def test_info_of_a_running_workload() -> None:
    record = StatusRecord(
        name="notes",
        status=WorkloadStatus.AUTH_RETRYING,
        status_context="token refresh failing",
        created_at=_AT,
        updated_at=_AT,
        pid=77,
    )
    assert workload_info(_CONFIG, record) == {
        "name": "notes",
        "package": "remote",
        "remote": True,
        "status": "auth_retrying",
        "status_context": "token refresh failing",
        "remote_url": "https://mcp.example.com/v1/mcp?tenant=a",
        "url": "http://127.0.0.1:41234/v1/mcp?tenant=a",
        "port": 41234,
        "transport_type": "streamable-http",
        "proxy_mode": "streamable-http",
        "transport": "streamable-http",
        "group": "default",
        "labels": {},
        "tools": [],
        "created_at": "2030-01-02T03:04:05Z",
        "started_at": None,
        "updated_at": "2030-01-02T03:04:05Z",
        "health": "degraded",
        "pid": 77,
        "client_auth": False,
    }


def test_a_workload_without_a_status_is_unknown() -> None:
    info = workload_info(_CONFIG, None)
    assert (info["status"], info["health"], info["pid"]) == ("unknown", "unknown", None)


def test_detail_turns_monitor_times_into_iso_and_keeps_the_history() -> None:
    snapshot = MonitorSnapshot(
        state=AuthState.RETRYING,
        reason="HTTP 403",
        access_expires_at=_AT.timestamp(),
        has_refresh_token=True,
        last_refresh_at=None,
        last_attempt_at=_AT.timestamp(),
        next_attempt_at=_AT.timestamp() + 600,
        retrying_since=_AT.timestamp(),
        consecutive_failures=6,
        last_failure="HTTP 403",
    )
    history = [Transition(status=WorkloadStatus.RUNNING, status_context="ok", at=_AT)]

    detail = workload_detail(_CONFIG, None, snapshot, history)

    assert detail["auth"]["state"] == "retrying"
    assert detail["auth"]["access_expires_at"] == "2030-01-02T03:04:05Z"
    assert detail["auth"]["next_attempt_at"] == "2030-01-02T03:14:05Z"
    assert detail["auth"]["last_refresh_at"] is None
    assert detail["history"] == [
        {"status": "running", "reason": "ok", "previous_status": None, "at": "2030-01-02T03:04:05Z"}
    ]
    assert detail["desired_state"] == "running"
    json.dumps(detail)  # JSON-ready as it is
    assert workload_detail(_CONFIG, None, None, [])["auth"] is None


def test_detail_of_a_stopped_workload_shows_the_stored_login_without_the_token() -> None:
    token = Token(access_token="at-secret", refresh_token="rt-secret", expires_at=_AT.timestamp())

    auth = workload_detail(_CONFIG, None, StoredGrantFacts(token), [])["auth"]

    assert auth == {
        "state": "stored",
        "reason": "",
        "access_expires_at": "2030-01-02T03:04:05Z",
        "has_refresh_token": True,
    }
    assert workload_detail(_CONFIG, None, StoredGrantFacts(None), [])["auth"]["state"] == "no token"
