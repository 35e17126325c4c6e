"""What an outage scenario is, what it saw, and the figures issue 7 sets targets for."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["stdio", "connect", "port"]
Backend = Literal["oidc", "fixture"]
NAME = "op"

#: Faults no request can arm: switched at the predicted refresh time instead.
TIMED_FAULTS = {"refused"}
#: A timed fault begins this long before the refresh is predicted to fall due.
TIMED_LEAD = 1.0
SAMPLE_EVERY = 0.1
CALL_EVERY = 1.0
LOGIN_TIMEOUT = 60.0
_STATUSES = "statuses"


@dataclass
class OutageSpec:
    fault: str = "none"
    mode: Mode = "port"
    backend: Backend = "oidc"
    access_ttl: int = 15
    outage: float = 20.0
    #: How long to keep watching after the restore when the first good call never comes.
    after_restore: float = 30.0
    #: Calls kept going after the first good call, to count refusals that follow it.
    settle: float = 6.0
    #: For ``--fault none``: successful rotations to see before stopping.
    rotations: int = 3
    call_timeout: float = 20.0
    #: Extra ``MCPKEEPER_*`` settings for the CLI (e.g. a refresh-ahead for 1 h tokens).
    env: dict[str, str] = field(default_factory=dict)
    #: For ``disk_full``: how long the disk stays full.
    full_for: float = 12.0
    #: Also wait (up to ``after_restore``) for the first successful refresh after the
    #: restore, so ``refreshed_after_restore`` is measured even when no call was refused.
    wait_refresh: bool = False


# -- observations ----------------------------------------------------------------------------


@dataclass
class Call:
    start: float
    end: float
    ok: bool
    error: str = ""
    #: Status file read the moment a failed call returned.
    status_then: str | None = None


@dataclass
class Observed:
    calls: list[Call] = field(default_factory=list)
    #: When the scenario stopped mcpkeeper on purpose (calls from then on are not judged).
    end_at: float | None = None
    #: (time, status, reason) at each change seen by the 0.1 s sampler.
    statuses: list[tuple[float, str, str]] = field(default_factory=list)
    samples: int = 0
    #: (arrival, grant_type, fault, outcome) of every token request.
    token_requests: list[tuple[float, str, str, str]] = field(default_factory=list)
    spent_token_reuse: int = 0
    fault_on: float | None = None
    restore_at: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def now() -> float:
    return time.time()


def _status_path(home: Path) -> Path:
    return home / _STATUSES / f"{NAME}.json"


def read_status(home: Path) -> tuple[str, str] | None:
    """(status, reason) from the workload's status file, as ``mcpkeeper list`` reads it."""
    try:
        data = json.loads(_status_path(home).read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("status")), str(data.get("status_context", ""))


# -- figures --------------------------------------------------------------------------------------


def _while_calling(statuses: list[tuple[float, str, str]], calls: list[Call]) -> list[tuple[float, str, str]]:
    """The statuses in effect from the first call on: the one it met, and every later change.

    The sampler starts before the client has its session, so ``starting`` is often seen;
    what the figures judge is what the status said while clients were calling.
    """
    if not calls:
        return statuses
    first = min(c.start for c in calls)
    earlier = [s for s in statuses if s[0] <= first]
    return earlier[-1:] + [s for s in statuses if s[0] > first]


def summarise(observed: Observed) -> dict[str, Any]:
    """The figures issue 7 sets targets for, from the observations (times in seconds)."""
    t0 = observed.fault_on
    end = observed.end_at
    calls = [c for c in observed.calls if end is None or c.start < end]
    failed = [c for c in calls if not c.ok]
    out: dict[str, Any] = {
        "calls": len(calls),
        "failed_calls": len(failed),
        "spent_token_reuse": observed.spent_token_reuse,
        "token_requests_by_grant": _count(g for _, g, _, _ in observed.token_requests),
        "ok_refreshes": sum(
            1 for _, g, _, o in observed.token_requests if g == "refresh_token" and o == "ok"
        ),
        "statuses_seen": sorted({s for _, s, _ in _while_calling(observed.statuses, calls)}),
        "final_status": observed.statuses[-1][1] if observed.statuses else None,
        "running_while_refused": sum(1 for c in failed if c.status_then == "running"),
        "notes": observed.notes,
    }
    if t0 is None:
        return out
    before = [c for c in calls if c.end < t0]
    out["failed_before_fault"] = sum(1 for c in before if not c.ok)
    first_refused = min((c.end for c in failed if c.end >= t0), default=None)
    out["first_refused_after_fault"] = _rel(first_refused, t0)
    retrying = next((t for t, s, _ in observed.statuses if s == "auth_retrying" and t >= t0), None)
    out["auth_retrying_after_fault"] = _rel(retrying, t0)
    non_running = next((t for t, s, _ in observed.statuses if s != "running" and t >= t0), None)
    out["status_left_running_after_fault"] = _rel(non_running, t0)
    if first_refused is not None:
        out["auth_retrying_delay"] = None if retrying is None else round(retrying - first_refused, 3)
        out["not_running_delay"] = None if non_running is None else round(non_running - first_refused, 3)
    restore = observed.restore_at
    if restore is None:
        return out
    out["outage_s"] = round(restore - t0, 3)
    out["failed_during_outage"] = sum(1 for c in failed if t0 <= c.end < restore)
    first_good = next((c.end for c in calls if c.ok and c.end >= restore), None)
    out["first_good_after_restore"] = _rel(first_good, restore)
    if first_good is not None:
        out["refused_after_first_good"] = sum(1 for c in failed if c.start >= first_good)
        out["calls_after_first_good"] = sum(1 for c in calls if c.start >= first_good)
    out["failed_after_restore_before_good"] = sum(
        1 for c in failed if c.end >= restore and (first_good is None or c.end < first_good)
    )
    during = [r for r in observed.token_requests if t0 <= r[0] < restore]
    out["token_requests_during_outage"] = len(during)
    out["token_requests_per_hour_of_outage"] = round(len(during) * 3600 / max(restore - t0, 1e-6), 1)
    refreshed = next(
        (
            at
            for at, g, _, o in observed.token_requests
            if g == "refresh_token" and o == "ok" and at >= restore
        ),
        None,
    )
    out["refreshed_after_restore"] = _rel(refreshed, restore)
    return out


def _rel(t: float | None, origin: float) -> float | None:
    return None if t is None else round(t - origin, 3)


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def raw_observations(observed: Observed) -> dict[str, Any]:
    t0 = observed.fault_on or (observed.calls[0].start if observed.calls else now())
    return {
        "origin": t0,
        "calls": [
            [round(c.start - t0, 3), round(c.end - t0, 3), c.ok, c.error[:300], c.status_then]
            for c in observed.calls
        ],
        "statuses": [[round(t - t0, 3), s, r] for t, s, r in observed.statuses],
        "samples": observed.samples,
        "token_requests": [[round(at - t0, 3), g, f, o] for at, g, f, o in observed.token_requests],
        "restore_at": _rel(observed.restore_at, t0),
    }
