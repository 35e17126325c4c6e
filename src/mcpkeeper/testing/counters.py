"""What the fixture token endpoint saw: the numbers tests and benchmarks assert on.

A benchmark's headline ("token requests per hour during an outage") is computed from
``request_times``; a test's "the client never reused a spent refresh token" is
``spent_token_reuse == 0``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TokenCounters"]


@dataclass(slots=True)
class TokenCounters:
    #: Every request that reached ``/token`` (requests refused at TCP level never arrive).
    total: int = 0
    #: By ``grant_type`` as sent ("authorization_code", "refresh_token", "missing", ...).
    by_grant: Counter[str] = field(default_factory=Counter)
    #: "ok" for an issued token, the RFC 6749 error code, or the fault mode that answered.
    by_outcome: Counter[str] = field(default_factory=Counter)
    #: The fault mode in force when the request arrived ("ok" when none).
    by_fault: Counter[str] = field(default_factory=Counter)
    #: A refresh token presented again after rotation spent it. A correct client makes none.
    spent_token_reuse: int = 0
    #: A spent refresh token honoured by the reuse grace (``refresh_reuse_grace``): the
    #: client lost the token the server had rotated to. Never counted in ``spent_token_reuse``.
    grace_reuse: int = 0
    #: Wall-clock time (the server's clock) of each request, in arrival order.
    request_times: list[float] = field(default_factory=list)

    def reset(self) -> None:
        """Back to zero in place, so references held by a test or benchmark stay live."""
        self.total = 0
        self.by_grant.clear()
        self.by_outcome.clear()
        self.by_fault.clear()
        self.spent_token_reuse = 0
        self.grace_reuse = 0
        self.request_times.clear()

    def record_request(self, grant_type: str, fault: str, when: float) -> None:
        self.total += 1
        self.by_grant[grant_type] += 1
        self.by_fault[fault] += 1
        self.request_times.append(when)

    def record_outcome(self, outcome: str) -> None:
        self.by_outcome[outcome] += 1

    def requests_between(self, start: float, end: float) -> int:
        """Requests that arrived in ``[start, end)`` (server wall-clock seconds)."""
        return sum(1 for when in self.request_times if start <= when < end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_grant": dict(self.by_grant),
            "by_outcome": dict(self.by_outcome),
            "by_fault": dict(self.by_fault),
            "spent_token_reuse": self.spent_token_reuse,
            "grace_reuse": self.grace_reuse,
            "request_times": list(self.request_times),
        }
