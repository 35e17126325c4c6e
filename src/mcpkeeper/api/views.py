"""The JSON shapes of the control API (WorkloadInfo, WorkloadDetail), built from state.

Pure functions of a config, a status record and a monitor snapshot, so the shapes are
tested without a daemon and can never carry a token: none of their inputs has one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mcpkeeper.auth.monitor import MonitorSnapshot
from mcpkeeper.auth.token import Token
from mcpkeeper.state.history import Transition
from mcpkeeper.state.status_store import StatusRecord
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig
from mcpkeeper.workloads.client_auth import client_auth_required
from mcpkeeper.workloads.info import history_json, info_json, iso_utc

__all__ = [
    "TIMELINE_WINDOW",
    "StoredGrantFacts",
    "dashboard_row",
    "snapshot_json",
    "workload_detail",
    "workload_info",
]

#: How far back the dashboard's status strip reaches.
TIMELINE_WINDOW = timedelta(hours=24)
#: The last failures the dashboard lists per workload.
_LAST_FAILURES = 5

_EPOCH_FIELDS = (
    "access_expires_at",
    "last_refresh_at",
    "last_attempt_at",
    "next_attempt_at",
    "retrying_since",
)


def workload_info(
    config: WorkloadConfig, record: StatusRecord | None, started_at: datetime | None = None
) -> dict[str, Any]:
    """WorkloadInfo: the row ``mcpkeeper list`` shows (ToolHive's ``core.Workload`` fields and ours)."""
    if record is None:
        status, context, updated = WorkloadStatus.UNKNOWN, "no status recorded yet", config.created_at
        pid = None
    else:
        status, context, updated, pid = record.status, record.status_context, record.updated_at, record.pid
    info = info_json(
        config, status=status, status_context=context, updated_at=updated, pid=pid, started_at=started_at
    )
    # The daemon's view (its environment decides MCPKEEPER_CLIENT_AUTH), for the snippets of `run`.
    info["client_auth"] = client_auth_required(config.client_auth)
    return info


def workload_detail(
    config: WorkloadConfig,
    record: StatusRecord | None,
    auth: MonitorSnapshot | StoredGrantFacts | None,
    history: list[Transition],
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """WorkloadDetail: WorkloadInfo plus the grant (the live monitor's view, or the stored
    login's facts when the workload is not running) and the transition history."""
    if isinstance(auth, MonitorSnapshot):
        auth_json: dict[str, Any] | None = snapshot_json(auth)
    elif isinstance(auth, StoredGrantFacts):
        auth_json = auth.to_json()
    else:
        auth_json = None
    return {
        **workload_info(config, record, started_at),
        "desired_state": config.desired_state,
        "auth": auth_json,
        "history": history_json(history),
    }


@dataclass(frozen=True, slots=True)
class StoredGrantFacts:
    """What the stored login says while no monitor runs: times and presence, never the token."""

    token: Token | None

    def to_json(self) -> dict[str, Any]:
        token = self.token
        expires = token.expires_at if token is not None else None
        return {
            "state": "stored" if token is not None else "no token",
            "reason": "" if token is not None else "no stored login",
            "access_expires_at": _epoch_iso(expires),
            "has_refresh_token": bool(token is not None and token.refresh_token),
        }


def snapshot_json(snapshot: MonitorSnapshot) -> dict[str, Any]:
    """The monitor snapshot with its epoch times as ISO-8601 UTC (it holds no secrets)."""
    data = asdict(snapshot)
    data["state"] = str(snapshot.state)
    for key in _EPOCH_FIELDS:
        value = data.get(key)
        data[key] = _epoch_iso(value)
    return data


def _epoch_iso(value: object) -> str | None:
    return iso_utc(datetime.fromtimestamp(value, UTC)) if isinstance(value, int | float) else None


def dashboard_row(
    info: dict[str, Any],
    auth: MonitorSnapshot | StoredGrantFacts | None,
    history: list[Transition],
    login: dict[str, Any] | None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One workload as the dashboard shows it: WorkloadInfo, the grant's times (epoch
    seconds, whole: the live stream sends a view only when it changed, and sub-second
    jitter of a computed time would resend it every poll), the status transitions of the
    last :data:`TIMELINE_WINDOW` (and the one before, which the strip starts with), the
    last failures, and the login the daemon runs for it, if any."""
    moment = now or datetime.now(UTC)
    since = moment - TIMELINE_WINDOW
    before = [t for t in history if t.at < since]
    window = [t for t in history if t.at >= since]
    strip = ([before[-1]] if before else []) + window
    failures = [t for t in history if t.status in _FAILING][-_LAST_FAILURES:]
    return {
        **info,
        "token": _token_times(auth),
        "timeline": [{"status": t.status.value, "at": int(t.at.timestamp())} for t in strip],
        "failures": [
            {"status": t.status.value, "reason": t.status_context, "at": int(t.at.timestamp())}
            for t in reversed(failures)
        ],
        "login": login,
        "now": int(moment.timestamp()),
    }


_FAILING = frozenset(
    {
        WorkloadStatus.AUTH_RETRYING,
        WorkloadStatus.UNAUTHENTICATED,
        WorkloadStatus.ERROR,
        WorkloadStatus.UNHEALTHY,
        WorkloadStatus.UNKNOWN,
    }
)


def _token_times(auth: MonitorSnapshot | StoredGrantFacts | None) -> dict[str, Any] | None:
    if isinstance(auth, StoredGrantFacts):
        token = auth.token
        return {
            "state": "stored" if token is not None else "no token",
            "expires_at": _whole(token.expires_at if token is not None else None),
        }
    if auth is None:
        return None
    return {
        "state": str(auth.state),
        "expires_at": _whole(auth.access_expires_at),
        "last_refresh_at": _whole(auth.last_refresh_at),
        "next_attempt_at": _whole(auth.next_attempt_at),
        "retrying_since": _whole(auth.retrying_since),
        "consecutive_failures": auth.consecutive_failures,
        "last_failure": auth.last_failure,
    }


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)
