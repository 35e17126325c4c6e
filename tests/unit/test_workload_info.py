"""workloads.info: the local URL rule and the JSON wording shared by the API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from mcpkeeper.cli.overview import WorkloadRow
from mcpkeeper.net import LOOPBACK
from mcpkeeper.proxy.app import local_url_for
from mcpkeeper.state.history import Transition
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig
from mcpkeeper.workloads import info
from mcpkeeper.workloads.info import history_json, info_json, iso_utc, local_url


def test_local_url_needs_a_port() -> None:
    assert local_url("https://h/", None) is None
    assert local_url("https://h", 5) == "http://127.0.0.1:5/"


def test_local_url_follows_the_proxys_rule() -> None:
    for remote in ("https://h", "https://h/mcp", "https://h:8443/a/b?x=1&y=2", "http://h/sse?k=v#frag"):
        assert local_url(remote, 41000) == local_url_for(remote, f"http://{LOOPBACK}:41000")
    assert info._LOOPBACK == LOOPBACK


def test_iso_utc_is_utc_with_z() -> None:
    moment = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert iso_utc(moment) == "2026-01-02T03:04:05Z"


def test_history_json() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
    transitions = [
        Transition(status=WorkloadStatus.STARTING, status_context="starting", at=at),
        Transition(
            status=WorkloadStatus.RUNNING,
            status_context="ok",
            previous_status=WorkloadStatus.STARTING,
            at=at,
            pid=3,
        ),
    ]
    assert history_json(transitions) == [
        {
            "status": "starting",
            "reason": "starting",
            "previous_status": None,
            "at": "2026-01-02T03:04:05.120000Z",
        },
        {
            "status": "running",
            "reason": "ok",
            "previous_status": "starting",
            "at": "2026-01-02T03:04:05.120000Z",
        },
    ]


def test_info_json_derives_url_and_health() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    config = WorkloadConfig(name="w", remote_url="https://h/sse", port=7, transport="sse", created_at=at)
    info = info_json(config, status="auth_retrying", status_context="why", updated_at=None, pid=None)
    assert info == {
        "name": "w",
        "package": "remote",
        "remote": True,
        "status": "auth_retrying",
        "status_context": "why",
        "remote_url": "https://h/sse",
        "url": "http://127.0.0.1:7/sse",
        "port": 7,
        "transport_type": "sse",
        "proxy_mode": "sse",
        "transport": "sse",
        "group": "default",
        "labels": {},
        "tools": [],
        "created_at": "2026-01-02T03:04:05Z",
        "started_at": None,
        "updated_at": None,
        "health": "degraded",
        "pid": None,
    }
    unreadable = WorkloadRow("w", "unknown", "config w.json was unreadable")
    assert unreadable.to_json()["url"] is None and unreadable.to_json()["health"] == "unknown"
