"""Each fixture fault, met by the real token client, lands on the intended side of ``classify``.

This keeps the fixture honest: a fault meant to look like an outage must not be mistaken
for the authorization server's verdict, and the one verdict must be read as one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcpkeeper.auth.errors import FailureKind, classify
from mcpkeeper.auth.token import Token
from mcpkeeper.auth.token_client import ClientCredentials, TokenEndpoint
from mcpkeeper.testing import FaultMode, FixtureAuthServer

pytestmark = pytest.mark.integration

EXPECTED = {
    FaultMode.WAF_HTML_403: (FailureKind.TRANSIENT, False),
    FaultMode.SERVER_ERROR_500: (FailureKind.TRANSIENT, False),
    FaultMode.RATE_LIMITED_429: (FailureKind.TRANSIENT, False),
    FaultMode.UNPARSABLE_200: (FailureKind.TRANSIENT, False),
    FaultMode.REFUSED: (FailureKind.TRANSIENT, True),
    FaultMode.HANG: (FailureKind.TRANSIENT, False),
    FaultMode.INVALID_GRANT: (FailureKind.PERMANENT, False),
    FaultMode.ECHO_REFRESH_TOKEN: (FailureKind.PERMANENT, False),
}


@pytest.fixture
async def auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer() as server:
        yield server


@pytest.mark.parametrize("mode", list(EXPECTED))
async def test_fault_is_classified_as_intended(auth: FixtureAuthServer, mode: FaultMode) -> None:
    minted = auth.mint("cli")
    token = Token(access_token=minted["access_token"], refresh_token=minted["refresh_token"])
    endpoint = TokenEndpoint(auth.token_endpoint, ClientCredentials("cli"), timeout=0.3)
    await auth.set_fault(mode)
    with pytest.raises(Exception) as caught:
        await endpoint.refresh(token)
    failure = classify(caught.value)
    assert (failure.kind, failure.network) == EXPECTED[mode], failure.reason
    if mode is FaultMode.RATE_LIMITED_429:
        assert failure.retry_after == 30

    await auth.set_fault(FaultMode.OK)  # the refresh token survived every fault
    fresh = await endpoint.refresh(token)
    assert fresh.refresh_token not in (None, token.refresh_token)
    assert auth.counters.spent_token_reuse == 0
