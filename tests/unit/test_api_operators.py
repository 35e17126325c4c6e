"""Pure parts of the HTTP API, metrics and dashboard: the --api address, failure kinds as
metric labels, dashboard sessions and one-time codes, the live view's strip and failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from mcpkeeper.api.dashboard import CODE_TTL, MAX_SESSIONS, SESSION_TTL, DashboardSessions
from mcpkeeper.api.http_listener import ApiAddressError, parse_api_address
from mcpkeeper.api.metrics import DaemonMetrics, WorkloadFacts, failure_kind
from mcpkeeper.api.views import dashboard_row
from mcpkeeper.auth.errors import TIMEOUT, UNREACHABLE, Failure, FailureKind
from mcpkeeper.state.history import Transition
from mcpkeeper.state.statuses import WorkloadStatus


@pytest.mark.parametrize(
    ("text", "port"), [("127.0.0.1:8080", 8080), ("localhost:0", 0), (" 127.0.0.1:65535 ", 65535)]
)
def test_api_address_is_loopback_with_a_port(text: str, port: int) -> None:
    assert parse_api_address(text) == port


@pytest.mark.parametrize(
    "text", ["0.0.0.0:8080", "192.168.1.2:80", "127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000", ":80"]
)
def test_api_address_refuses_anything_else(text: str) -> None:
    with pytest.raises(ApiAddressError):
        parse_api_address(text)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (None, "none"),
        (Failure(FailureKind.TRANSIENT, "x", network=True, signature=UNREACHABLE), "unreachable"),
        (Failure(FailureKind.TRANSIENT, "x", signature=TIMEOUT), "timeout"),
        (Failure(FailureKind.TRANSIENT, "x", status_code=429), "http_429"),
        (Failure(FailureKind.TRANSIENT, "x", status_code=502), "http_5xx"),
        (Failure(FailureKind.TRANSIENT, "x", status_code=403, signature="http 403 text/html"), "http_4xx"),
        (Failure(FailureKind.TRANSIENT, "x", status_code=200), "http_unusable"),
        (Failure(FailureKind.PERMANENT, "x", status_code=400, oauth_error="invalid_grant"), "invalid_grant"),
        (Failure(FailureKind.PERMANENT, "x", status_code=400, oauth_error="made_up\nlabel"), "oauth_other"),
        (Failure(FailureKind.STORAGE, "disk full"), "storage"),
    ],
)
def test_failure_kinds_are_a_small_fixed_vocabulary(failure: Failure | None, kind: str) -> None:
    assert failure_kind(failure) == kind


def test_time_in_auth_retrying_counts_only_while_there() -> None:
    now = [100.0]
    metrics = DaemonMetrics(lambda: [WorkloadFacts("w", None, None)], clock=lambda: now[0])

    def retrying_seconds() -> float:
        for line in generate_latest(metrics.registry).decode().splitlines():
            if line.startswith('mcpkeeper_auth_retrying_seconds_total{workload="w"}'):
                return float(line.split()[-1])
        raise AssertionError("no series")

    metrics.status_changed("w", WorkloadStatus.RUNNING)
    now[0] = 110.0
    assert retrying_seconds() == 0
    metrics.status_changed("w", WorkloadStatus.AUTH_RETRYING)
    now[0] = 115.0
    assert retrying_seconds() == 5  # the open period counts at scrape time
    metrics.status_changed("w", WorkloadStatus.AUTH_RETRYING)  # a new reason: the same period
    now[0] = 120.0
    metrics.status_changed("w", WorkloadStatus.RUNNING)
    now[0] = 500.0
    assert retrying_seconds() == 10


def test_one_time_codes_work_once_and_sessions_expire() -> None:
    now = [0.0]
    sessions = DashboardSessions("api-token-" + "x" * 40, clock=lambda: now[0])
    code, ttl = sessions.mint_code()
    assert ttl == CODE_TTL
    session = sessions.open_session(code=code)
    assert session is not None and sessions.accepts(session)
    assert sessions.open_session(code=code) is None  # spent
    late, _ = sessions.mint_code()
    now[0] = CODE_TTL + 1
    assert sessions.open_session(code=late) is None  # expired
    assert sessions.open_session(token="wrong") is None
    assert sessions.accepts("api-token-" + "x" * 40) and not sessions.accepts("api-token")
    now[0] += SESSION_TTL
    assert not sessions.accepts(session)
    opened = [sessions.open_session(token="api-token-" + "x" * 40) for _ in range(MAX_SESSIONS + 1)]
    assert all(opened) and not sessions.accepts(str(opened[0])) and sessions.accepts(str(opened[-1]))


def test_dashboard_row_keeps_the_last_day_and_the_status_before_it() -> None:
    now = datetime(2030, 1, 2, 12, tzinfo=UTC)

    def at(hours_ago: float, status: WorkloadStatus, reason: str = "") -> Transition:
        return Transition(status=status, status_context=reason, at=now - timedelta(hours=hours_ago))

    history = [
        at(30, WorkloadStatus.RUNNING),
        at(26, WorkloadStatus.AUTH_RETRYING, "old outage"),
        at(25, WorkloadStatus.RUNNING),
        at(2, WorkloadStatus.AUTH_RETRYING, "HTTP 403"),
        at(1, WorkloadStatus.RUNNING),
    ]
    row = dashboard_row({"name": "w", "status": "running"}, None, history, None, now=now)
    assert [entry["status"] for entry in row["timeline"]] == ["running", "auth_retrying", "running"]
    assert row["timeline"][0]["at"] == int((now - timedelta(hours=25)).timestamp())
    assert [f["reason"] for f in row["failures"]] == ["HTTP 403", "old outage"]  # newest first
    assert row["token"] is None and row["now"] == int(now.timestamp())


def test_the_grafana_dashboard_uses_only_metrics_the_daemon_exposes() -> None:
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana" / "mcpkeeper.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(?:mcpkeeper|process)_[a-z_]+", expr)}
    from mcpkeeper.auth.monitor import AuthState, MonitorSnapshot

    snapshot = MonitorSnapshot(AuthState.FRESH, "", 2e9, True, None, None, None, None, 0, None)
    metrics = DaemonMetrics(lambda: [WorkloadFacts("w", None, snapshot)])
    metrics.monitor_observer("w").attempt_finished(None, 0.1)
    metrics.proxy_observer("w").response_started(503, 0.01, "auth_retrying")
    metrics.proxy_observer("w").upstream_broken()
    exposed = set(re.findall(r"^([a-z_]+)", generate_latest(metrics.registry).decode(), re.MULTILINE))
    assert used and used <= exposed, used - exposed
