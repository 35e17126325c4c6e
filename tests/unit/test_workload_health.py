"""architecture.md §4: the aggregator health of every status."""

from __future__ import annotations

import pytest

from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.workloads.health import Health, health_of

TABLE = [
    ("running", "healthy"),
    ("auth_retrying", "degraded"),
    ("unauthenticated", "unauthenticated"),
    ("unhealthy", "unhealthy"),
    ("stopped", "unhealthy"),
    ("error", "unhealthy"),
    ("stopping", "unhealthy"),
    ("removing", "unhealthy"),
    ("policy_stopped", "unhealthy"),
    ("starting", "unknown"),
    ("unknown", "unknown"),
]


@pytest.mark.parametrize(("status", "health"), TABLE)
def test_health_of_each_status(status: str, health: str) -> None:
    assert health_of(WorkloadStatus(status)) == Health(health)
    assert health_of(status) == health  # plain strings read back from disk work too


def test_the_table_covers_every_status() -> None:
    assert {status for status, _ in TABLE} == {s.value for s in WorkloadStatus}


def test_an_unrecognised_status_is_unknown() -> None:
    assert health_of("paused") is Health.UNKNOWN
