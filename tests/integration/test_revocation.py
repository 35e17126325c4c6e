"""RFC 7009 revocation of a stored login against the fixture authorization server over loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from mcpkeeper.auth.credentials import StoredLogin
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.auth.revocation import revoke_login
from mcpkeeper.auth.token import Token
from mcpkeeper.testing import FixtureAuthServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer(access_token_lifetime=600) as server:
        yield server


def _login(auth: FixtureAuthServer, client: ClientRegistration) -> StoredLogin:
    minted = auth.mint(client.client_id, scope="mcp")
    now = time.time()
    token = Token(minted["access_token"], minted["refresh_token"], now + 600, minted["scope"], issued_at=now)
    return StoredLogin(
        remote_url="http://127.0.0.1:9/mcp",
        issuer=auth.issuer,
        authorization_endpoint=auth.authorization_endpoint,
        token_endpoint=auth.token_endpoint,
        client=client,
        token=token,
    )


async def test_both_tokens_are_revoked_refresh_token_first(auth: FixtureAuthServer) -> None:
    login = _login(auth, ClientRegistration("cli"))
    assert login.token is not None
    result = await revoke_login(login)
    assert result.outcome == "revoked" and result.revoked == ("refresh_token", "access_token")
    assert result.endpoint == auth.revocation_endpoint
    assert [r["hint"] for r in auth.revocations] == ["refresh_token", "access_token"]
    assert auth.verify_access_token(login.token.access_token) is None
    assert auth.revocations[0]["revoked"] == "refresh_token"


async def test_a_confidential_client_authenticates_as_at_the_token_endpoint(auth: FixtureAuthServer) -> None:
    registered = auth.register_client(token_endpoint_auth_method="client_secret_basic")
    client = ClientRegistration(registered.client_id, registered.client_secret, "client_secret_basic")
    result = await revoke_login(_login(auth, client))
    assert result.outcome == "revoked"
    wrong = ClientRegistration(registered.client_id, "not-the-secret", "client_secret_basic")
    result = await revoke_login(_login(auth, wrong))
    assert result.outcome == "failed"
    assert "HTTP 401 invalid_client" in result.detail and "refresh_token" in result.detail


async def test_a_server_without_revocation_is_reported_as_such() -> None:
    async with FixtureAuthServer(offer_revocation=False) as auth:
        result = await revoke_login(_login(auth, ClientRegistration("cli")))
        assert result.outcome == "not_offered" and "offers no token revocation" in result.detail
        assert auth.revocations == []


async def test_an_unreachable_server_is_a_failure_not_an_exception(auth: FixtureAuthServer) -> None:
    login = _login(auth, ClientRegistration("cli"))
    await auth.set_fault("refused")
    result = await revoke_login(login)
    assert result.outcome == "failed" and auth.issuer in result.detail
