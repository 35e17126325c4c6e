"""PersistingRefresher against real token endpoints: save-before-return, verdicts, outages, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
from mcpkeeper.auth.errors import TokenEndpointError, classify
from mcpkeeper.auth.registration import ClientRegistration, rejected_registration_reason
from mcpkeeper.auth.token import Token
from mcpkeeper.testing import FixtureAuthServer
from tests.integration.login_site import (
    browser_login,
    file_store,  # noqa: F401 - the `store` fixture
    scripted_site,
)

pytestmark = pytest.mark.integration

CLIENT = "refresher-client"


@pytest.fixture
async def auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer(access_token_lifetime=60.0) as server:
        yield server


def _seed(auth: FixtureAuthServer, store: CredentialStore, *, dynamic: bool = True) -> Token:
    minted = auth.mint(CLIENT, scope="mcp")
    now = time.time()
    token = Token(minted["access_token"], minted["refresh_token"], now + 60.0, minted["scope"], issued_at=now)
    store.save(
        "w",
        StoredLogin(
            remote_url="http://127.0.0.1:9/mcp",
            issuer=auth.issuer,
            authorization_endpoint=auth.authorization_endpoint,
            token_endpoint=auth.token_endpoint,
            client=ClientRegistration(
                CLIENT, registration_endpoint=auth.registration_endpoint, dynamic=dynamic
            ),
            scopes=("mcp",),
            token=token,
        ),
    )
    return token


async def test_rotation_is_saved_before_it_is_returned(
    auth: FixtureAuthServer, store: CredentialStore
) -> None:
    token = _seed(auth, store)
    fresh = await store.refresher("w")(token)
    assert fresh.refresh_token != token.refresh_token
    stored = store.load("w")
    assert stored is not None and stored.token == fresh
    assert auth.verify_access_token(fresh.access_token) is not None


@pytest.mark.parametrize(
    ("fault", "permanent"),
    [
        ("invalid_grant", True),
        ("waf_html_403", False),
        ("server_error_500", False),
        ("rate_limited_429", False),
        ("unparsable_200", False),
    ],
)
async def test_a_failed_refresh_leaves_the_store_alone(
    auth: FixtureAuthServer, store: CredentialStore, fault: str, permanent: bool
) -> None:
    token = _seed(auth, store)
    before = store.load("w")
    await auth.set_fault(fault)
    with pytest.raises(TokenEndpointError) as caught:
        await store.refresher("w")(token)
    assert classify(caught.value).permanent is permanent
    assert store.load("w") == before
    await auth.set_fault("ok")  # the fault answered without spending anything: the stored token still works
    assert (await store.refresher("w")(token)).refresh_token != token.refresh_token


@pytest.mark.parametrize("dynamic", [True, False])
async def test_a_rejected_client_is_marked_for_re_registration_when_dynamic(
    auth: FixtureAuthServer, store: CredentialStore, dynamic: bool
) -> None:
    token = _seed(auth, store, dynamic=dynamic)
    del auth.store.clients[CLIENT]  # the server forgot our registration
    with pytest.raises(TokenEndpointError) as caught:
        await store.refresher("w")(token)
    failure = classify(caught.value)
    assert failure.permanent and failure.oauth_error == "invalid_client"
    # The monitor's status reason is the failure's text: it must name the cure.
    cure = "`mcpkeeper login w` to register again" if dynamic else "`mcpkeeper login w --client-id ...`"
    assert cure in failure.reason and "\n" not in failure.reason
    stored = store.load("w")
    assert stored is not None and stored.registration_rejected is dynamic
    assert stored.token == token  # nothing else changed
    reason = rejected_registration_reason("w", failure, dynamic=stored.client.dynamic)
    assert reason is not None
    assert ("mcpkeeper login w`" in reason) is dynamic


async def test_a_cancelled_caller_does_not_strand_the_lock(
    auth: FixtureAuthServer, store: CredentialStore
) -> None:
    token = _seed(auth, store)
    await auth.set_fault("hang")
    refresher = store.refresher("w")
    attempt = asyncio.create_task(refresher(token))
    async with asyncio.timeout(10):
        while auth.counters.by_fault["hang"] == 0:
            await asyncio.sleep(0.01)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await auth.set_fault("ok")  # the shielded exchange ends (released unprocessed) and frees the lock
    async with asyncio.timeout(10):
        fresh = await store.refresher("w")(token)
    stored = store.load("w")
    assert stored is not None and stored.token == fresh


async def test_refresh_sends_the_resource(store: CredentialStore) -> None:
    async with scripted_site() as site:
        await browser_login(site.mcp_url, "w", store=store, timeout=10)
        stored = store.load("w")
        assert stored is not None and stored.token is not None
        await store.refresher("w")(stored.token)
        refresh = site.token_forms[-1]
        assert refresh["grant_type"] == "refresh_token"
        assert refresh["resource"] == site.mcp_url
