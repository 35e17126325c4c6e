"""``/metrics`` of a real daemon while the fixture authorization server fails and recovers:
each metric moves the way an operator reading it would expect."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from mcpkeeper.testing.faults import FaultMode
from tests.integration.daemon_support import call_echo, raw_post, store_login, wait_for
from tests.integration.http_api_support import api_daemon, metric_values, sample

pytestmark = pytest.mark.integration

_INIT = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


async def _metrics(http: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    return metric_values(response.text)


async def test_metrics_follow_an_outage_of_the_token_endpoint(tmp_path: Path) -> None:
    async with FixtureAuthServer(access_token_lifetime=4) as auth, FixtureMCPServer(auth) as mcp:
        # A token that is due for refresh at once: the monitor starts refreshing every few seconds.
        store_login(tmp_path, "notes", auth, mcp, expires_at=time.time() + 4)
        async with api_daemon(tmp_path) as (daemon, http):
            await daemon.client.create_workload("notes", mcp.url)
            info = await daemon.wait_status("notes", "running")
            assert await call_echo(info["url"], "hello") == "hello"

            async def refreshed() -> bool:
                m = await _metrics(http)
                ok = sample(
                    m,
                    "mcpkeeper_token_refresh_attempts_total",
                    workload="notes",
                    outcome="success",
                    kind="none",
                )
                return (ok or 0) >= 1

            await wait_for(refreshed, timeout=15, what="a successful refresh counted")
            healthy = await _metrics(http)
            assert sample(healthy, "mcpkeeper_workload_status", workload="notes", status="running") == 1
            assert sample(healthy, "mcpkeeper_workload_status", workload="notes", status="auth_retrying") == 0
            expiry = sample(healthy, "mcpkeeper_token_expiry_seconds", workload="notes")
            assert expiry is not None and 0 < expiry <= 4
            assert sample(healthy, "mcpkeeper_token_refresh_consecutive_failures", workload="notes") == 0
            assert sample(healthy, "mcpkeeper_auth_retrying_seconds_total", workload="notes") == 0
            assert (
                sample(healthy, "mcpkeeper_proxy_request_duration_seconds_count", workload="notes") or 0
            ) >= 1
            assert (
                sample(healthy, "mcpkeeper_build_info", version=pytest.importorskip("mcpkeeper").__version__)
                == 1
            )
            assert (sample(healthy, "process_resident_memory_bytes") or 0) > 0

            # The outage: a WAF answers the token endpoint with an HTML 403.
            await auth.set_fault(FaultMode.WAF_HTML_403)

            async def retrying() -> bool:
                m = await _metrics(http)
                return sample(m, "mcpkeeper_workload_status", workload="notes", status="auth_retrying") == 1

            await wait_for(retrying, timeout=15, what="auth_retrying in the status gauge")
            refused = await raw_post(info["url"], _INIT)
            assert refused.status_code == 503
            during = await _metrics(http)
            failed = sample(
                during,
                "mcpkeeper_token_refresh_attempts_total",
                workload="notes",
                outcome="transient",
                kind="http_4xx",
            )
            assert failed is not None and failed >= 1
            assert (
                sample(during, "mcpkeeper_token_refresh_consecutive_failures", workload="notes") or 0
            ) >= 1
            unavailable = sample(
                during,
                "mcpkeeper_proxy_unavailable_responses_total",
                workload="notes",
                reason="auth_retrying",
            )
            assert unavailable is not None and unavailable >= 1

            async def ran_out() -> bool:  # the expiry counts down through zero while nothing refreshes
                left = sample(await _metrics(http), "mcpkeeper_token_expiry_seconds", workload="notes")
                return left is not None and left < 0

            await wait_for(ran_out, timeout=10, what="the token expiry to go negative")
            retrying_so_far = sample(during, "mcpkeeper_auth_retrying_seconds_total", workload="notes") or 0
            assert retrying_so_far > 0

            # The cause clears: the next attempt succeeds and the workload runs again.
            await auth.set_fault(FaultMode.OK)
            await daemon.wait_status("notes", "running", timeout=15)
            after = await _metrics(http)
            assert sample(after, "mcpkeeper_workload_status", workload="notes", status="running") == 1
            assert sample(after, "mcpkeeper_token_refresh_consecutive_failures", workload="notes") == 0
            assert (sample(after, "mcpkeeper_token_expiry_seconds", workload="notes") or 0) > 0
            successes = sample(
                after,
                "mcpkeeper_token_refresh_attempts_total",
                workload="notes",
                outcome="success",
                kind="none",
            )
            assert successes is not None and successes >= 2
            stopped_at = sample(after, "mcpkeeper_auth_retrying_seconds_total", workload="notes") or 0
            assert stopped_at >= retrying_so_far
            later = await _metrics(http)  # the clock stopped with the outage
            assert sample(later, "mcpkeeper_auth_retrying_seconds_total", workload="notes") == stopped_at

            # A removed workload's series go with it.
            await daemon.client.remove_workload("notes")
            gone = await _metrics(http)
            assert not [key for key in gone if ("workload", "notes") in key[1]]
