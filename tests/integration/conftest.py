"""Fixtures for the integration tests against the third-party authorization server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.thirdparty.campaign import Campaign
from tests.thirdparty.oidc import OidcStack

#: The outage scenarios of test_thirdparty_oidc.py, all started together (see Campaign).
#: Each fault runs in one of the three ways of serving a workload, so together they cover
#: all three; invalid_grant, the leak and the full disk need the daemon (`login NAME`,
#: the control API, the aggregated endpoint).
OUTAGE_SCENARIOS: dict[str, list[str]] = {
    "smoke-stdio": ["--fault", "none", "--mode", "stdio"],
    "smoke-connect": ["--fault", "none", "--mode", "connect"],
    "smoke-port": ["--fault", "none", "--mode", "port"],
    "refused": ["--fault", "refused", "--mode", "port"],
    "hang": ["--fault", "hang", "--mode", "stdio"],
    "waf_html_403": ["--fault", "waf_html_403", "--mode", "connect"],
    "server_error_500": ["--fault", "server_error_500", "--mode", "port"],
    "rate_limited_429": ["--fault", "rate_limited_429", "--mode", "stdio"],
    "invalid_grant": ["--fault", "invalid_grant", "--mode", "connect"],
    "echo_refresh_token": ["--fault", "echo_refresh_token", "--mode", "connect"],
    "disk_full": ["--fault", "disk_full", "--mode", "connect"],
}
_COMMON = ["--access-ttl", "15", "--outage", "20", "--after-restore", "30", "--settle", "6"]


@pytest.fixture(scope="session")
def outage_campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    """Every outage scenario, running in parallel from the first test that asks for one."""
    root = tmp_path_factory.mktemp("outages")
    campaign = Campaign({key: [*args, *_COMMON] for key, args in OUTAGE_SCENARIOS.items()}, root)
    try:
        yield campaign
    finally:
        campaign.close()


@pytest.fixture
async def oidc_stack(tmp_path: Path) -> AsyncIterator[OidcStack]:
    """oidc-provider (15 s access tokens) behind the fault proxy, and the MCP server trusting it."""
    async with OidcStack(access_token_ttl=15, workdir=tmp_path) as stack:
        yield stack
