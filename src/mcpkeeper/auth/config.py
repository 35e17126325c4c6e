"""Timing of refresh, retry and give-up, from the environment (architecture.md §5).

Every knob has a ``MCPKEEPER_`` name and, as a fallback, the ``TOOLHIVE_`` name a user
migrating from ToolHive already has set. A value that does not parse, or is not
positive, falls back to the default with one warning: a typo in an environment variable
must not take a workload down.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from mcpkeeper.durations import positive_duration
from mcpkeeper.envsettings import read_setting

__all__ = ["RetryConfig"]

# field name -> (environment suffix, kind)
_ENV: dict[str, tuple[str, str]] = {
    "initial_retry_interval": ("TOKEN_REFRESH_INITIAL_RETRY_INTERVAL", "duration"),
    "max_retry_interval": ("TOKEN_REFRESH_MAX_RETRY_INTERVAL", "duration"),
    "max_tries": ("TOKEN_REFRESH_MAX_TRIES", "int"),
    "max_elapsed": ("TOKEN_REFRESH_MAX_ELAPSED_TIME", "duration"),
    "retrying_tick": ("TOKEN_AUTH_RETRYING_TICK_INTERVAL", "duration"),
    "retrying_ceiling": ("TOKEN_AUTH_RETRYING_MAX_ELAPSED", "duration"),
    "refresh_ahead": ("TOKEN_REFRESH_AHEAD", "fraction"),
    "refresh_min_lead": ("TOKEN_REFRESH_MIN_LEAD", "duration"),
    "probe_interval": ("TOKEN_PROBE_INTERVAL", "duration"),
    "demand_initial_interval": ("TOKEN_DEMAND_INITIAL_INTERVAL", "duration"),
    "demand_max_interval": ("TOKEN_DEMAND_MAX_INTERVAL", "duration"),
    "wake_check_interval": ("TOKEN_WAKE_CHECK_INTERVAL", "duration"),
    "request_timeout": ("TOKEN_REQUEST_TIMEOUT", "duration"),
    "expiry_skew": ("TOKEN_EXPIRY_SKEW", "duration"),
    "caller_wait": ("TOKEN_CALLER_WAIT", "duration"),
    "reuse_grace": ("TOKEN_REFRESH_REUSE_GRACE", "duration_or_off"),
    "probe_max_interval": ("TOKEN_PROBE_MAX_INTERVAL", "duration"),
    "max_attempts_per_hour": ("TOKEN_MAX_ATTEMPTS_PER_HOUR", "int"),
}
_PREFIXES = ("MCPKEEPER_", "TOOLHIVE_")


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How the token monitor schedules its work. All durations in seconds."""

    #: Short retry: first back-off, cap, tries and total budget before ``auth_retrying``.
    initial_retry_interval: float = 10.0
    max_retry_interval: float = 120.0
    max_tries: int = 5
    max_elapsed: float = 300.0
    #: ``auth_retrying``: the slow cadence and the ceiling before ``unauthenticated``.
    retrying_tick: float = 600.0
    retrying_ceiling: float = 86400.0
    #: Refresh when this fraction of the lifetime has passed, and at least
    #: ``refresh_min_lead`` seconds before expiry, whichever comes first.
    refresh_ahead: float = 0.75
    refresh_min_lead: float = 60.0
    #: Recovery triggers: the probe's cadence while callers are blocked (it starts at
    #: ``probe_interval`` and slows to ``probe_max_interval`` over a long outage), demand-
    #: triggered attempts' own back-off, and how often the wall clock is compared with the
    #: monotonic one.
    probe_interval: float = 2.0
    probe_max_interval: float = 5.0
    demand_initial_interval: float = 5.0
    demand_max_interval: float = 60.0
    #: Token requests an hour of outage may cost at most, whatever triggers them: attempts
    #: triggered by demand or the probe stop while the last hour holds this many less the
    #: ticks' share (the scheduled back-off and tick attempts always run).
    max_attempts_per_hour: int = 60
    wake_check_interval: float = 5.0
    #: A wall-clock jump larger than this (against the monotonic clock) means suspend/resume.
    wake_jump_threshold: float = 30.0
    #: Timeout of one token request (connect, read, write, pool). Token endpoints answer in
    #: well under a second; a longer wait only delays recovery from a hung endpoint.
    request_timeout: float = 10.0
    #: Jitter applied to short-retry back-off, as a fraction (0.2 = ±20 %).
    jitter: float = 0.2
    #: A token with less life than this is not handed out (the request would die in flight);
    #: never more than a tenth of the token's lifetime (:func:`~mcpkeeper.auth.token.expiry_skew`).
    expiry_skew: float = 5.0
    #: How long a caller with no valid token waits for an attempt in flight before it is
    #: told to come back (a hanging token endpoint must not hang the MCP client too).
    caller_wait: float = 2.0
    #: The authorization server's refresh-token reuse grace (Okta's grace period, Auth0's
    #: reuse interval, Keycloak's max reuse): within it, a refresh token that a hung request
    #: may have spent can be sent again safely. 0 (the default) assumes strict rotation.
    reuse_grace: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryConfig:
        env = os.environ if environ is None else environ
        defaults = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            spec = _ENV.get(f.name)
            if spec is None:
                continue
            suffix, kind = spec
            values[f.name] = read_setting(
                env,
                [prefix + suffix for prefix in _PREFIXES],
                functools.partial(_parse, kind=kind),
                getattr(defaults, f.name),
                what=f"a valid positive {kind}",
            )
        return cls(**values)

    def with_overrides(self, **changes: Any) -> RetryConfig:
        from dataclasses import replace

        return replace(self, **changes)


def _parse(raw: str, kind: str) -> float | int | None:
    if kind == "duration":
        return positive_duration(raw)
    if kind == "duration_or_off":  # 0 is a meaningful value: "off"
        return 0.0 if raw.strip() in ("0", "0s", "off") else positive_duration(raw)
    try:
        value: float = int(raw.strip()) if kind == "int" else float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    if kind == "fraction" and value >= 1:
        return None
    return value
