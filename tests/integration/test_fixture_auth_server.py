"""The fixture authorization server, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcpkeeper.testing import FaultMode, FixtureAuthServer
from mcpkeeper.testing.clock import VirtualClock

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:8765/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.fixture
async def auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer(access_token_lifetime=600) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def authorize(
    http: httpx.AsyncClient, auth: FixtureAuthServer, client_id: str, **overrides: str | None
) -> dict[str, list[str]]:
    """GET /authorize and return the query of the redirect it answers with."""
    _, challenge = pkce_pair()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    sent = {k: v for k, v in params.items() if v is not None}
    response = await http.get(auth.authorization_endpoint, params=sent)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return parse_qs(location.query)


async def exchange(
    http: httpx.AsyncClient,
    auth: FixtureAuthServer,
    client_id: str,
    code: str,
    verifier: str,
    redirect_uri: str = REDIRECT,
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": client_id,
    }
    return await http.post(auth.token_endpoint, data=form)


async def login(
    http: httpx.AsyncClient, auth: FixtureAuthServer, client_id: str, **token_extra: str
) -> dict[str, Any]:
    """The whole authorization-code flow with PKCE; returns the token response."""
    verifier, challenge = pkce_pair()
    query = await authorize(http, auth, client_id, code_challenge=challenge, **token_extra)
    response = await exchange(http, auth, client_id, query["code"][0], verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(
    http: httpx.AsyncClient,
    auth: FixtureAuthServer,
    client_id: str,
    token: str,
    *,
    timeout: float = 5.0,
    **extra: str,
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, **extra}
    return await http.post(auth.token_endpoint, data=form, timeout=timeout)


# -- metadata and registration ----------------------------------------------------------


async def test_metadata_is_rfc8414_and_served_at_both_well_known_paths(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        response = await http.get(auth.url + path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        meta = response.json()
        assert meta == auth.metadata
    assert meta["issuer"] == auth.issuer == f"http://127.0.0.1:{auth.port}"
    assert meta["authorization_endpoint"] == auth.authorization_endpoint
    assert meta["token_endpoint"] == auth.token_endpoint
    assert meta["registration_endpoint"] == auth.registration_endpoint
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    }
    assert meta["device_authorization_endpoint"] == auth.device_authorization_endpoint
    assert meta["client_id_metadata_document_supported"] is True
    assert "offline_access" in meta["scopes_supported"]
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    assert meta["response_types_supported"] == ["code"]


async def test_registration_of_public_and_confidential_clients(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    public = await http.post(
        auth.registration_endpoint,
        json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "t"},
    )
    assert public.status_code == 201
    info = public.json()
    assert info["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in info
    assert info["redirect_uris"] == [REDIRECT]
    assert info["client_id"] in auth.store.clients

    confidential = await http.post(
        auth.registration_endpoint,
        json={
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "client_secret_post",
        },
    )
    assert confidential.status_code == 201
    assert confidential.json()["client_secret"]
    assert confidential.json()["client_id"] != info["client_id"]


@pytest.mark.parametrize(
    "body",
    [
        {"redirect_uris": ["http://evil.example/cb"]},  # plain http off loopback
        {"redirect_uris": ["https://app.example/cb#frag"]},
        {"redirect_uris": []},
        {"client_name": "no redirect uris"},
    ],
)
async def test_registration_rejects_bad_redirect_uris(
    auth: FixtureAuthServer, http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await http.post(auth.registration_endpoint, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert auth.store.clients == {}


async def test_registration_rejects_unknown_auth_method_and_non_json(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    bad_method = await http.post(
        auth.registration_endpoint,
        json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"},
    )
    assert bad_method.status_code == 400
    assert bad_method.json()["error"] == "invalid_client_metadata"
    not_json = await http.post(auth.registration_endpoint, content=b"<xml/>")
    assert not_json.status_code == 400
    assert not_json.json()["error"] == "invalid_client_metadata"


# -- authorize + code exchange ---------------------------------------------------------


async def test_full_authorization_code_flow_with_pkce(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    client = auth.register_client([REDIRECT])
    verifier, challenge = pkce_pair()
    query = await authorize(
        http,
        auth,
        client.client_id,
        code_challenge=challenge,
        scope="mcp offline_access",
        resource="http://r.example/mcp",
    )
    assert query["state"] == ["st-123"]
    assert query["iss"] == [auth.issuer]
    code = query["code"][0]

    response = await exchange(http, auth, client.client_id, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 600
    assert token["scope"] == "mcp offline_access"
    assert token["access_token"] != token["refresh_token"]
    claims = auth.verify_access_token(token["access_token"])
    assert claims is not None
    assert claims["aud"] == "http://r.example/mcp"
    assert claims["client_id"] == client.client_id

    reused = await exchange(http, auth, client.client_id, code, verifier)  # codes are single-use
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert auth.counters.by_grant["authorization_code"] == 2
    assert auth.counters.by_outcome == {"ok": 1, "invalid_grant": 1}


async def test_wrong_pkce_verifier_is_rejected(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    client = auth.register_client([REDIRECT])
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    query = await authorize(http, auth, client.client_id, code_challenge=challenge)
    response = await exchange(http, auth, client.client_id, query["code"][0], other_verifier)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "PKCE verification failed"}


async def test_code_exchange_checks_redirect_uri_and_client(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    client = auth.register_client([REDIRECT])
    other = auth.register_client([REDIRECT])
    verifier, challenge = pkce_pair()
    for client_id, redirect in (
        (other.client_id, REDIRECT),
        (client.client_id, "http://127.0.0.1:8765/other"),
    ):
        query = await authorize(http, auth, client.client_id, code_challenge=challenge)
        response = await exchange(http, auth, client_id, query["code"][0], verifier, redirect)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"state": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"resource": "not-a-uri"}, "invalid_target"),
    ],
)
async def test_authorize_errors_redirect_back_per_rfc6749(
    auth: FixtureAuthServer, http: httpx.AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    client = auth.register_client([REDIRECT])
    query = await authorize(http, auth, client.client_id, **overrides)
    assert query["error"] == [error]
    assert "code" not in query
    if overrides.get("state", "x") is not None:
        assert query["state"] == ["st-123"]


async def test_authorize_never_redirects_to_an_unregistered_uri(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    client = auth.register_client([REDIRECT])
    _, challenge = pkce_pair()
    base = {
        "response_type": "code",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    wrong_uri = await http.get(
        auth.authorization_endpoint,
        params={**base, "client_id": client.client_id, "redirect_uri": "https://evil.example/cb"},
    )
    unknown_client = await http.get(
        auth.authorization_endpoint, params={**base, "client_id": "nobody", "redirect_uri": REDIRECT}
    )
    for response in (wrong_uri, unknown_client):
        assert response.status_code == 400
        assert "location" not in response.headers
        assert response.json()["error"] == "invalid_request"


async def test_loopback_redirect_may_use_any_port(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    client = auth.register_client(["http://127.0.0.1/callback"])
    _, challenge = pkce_pair()
    response = await http.get(
        auth.authorization_endpoint,
        params={
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": "http://127.0.0.1:54321/callback",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith("http://127.0.0.1:54321/callback?code=")


async def test_deny_mode_answers_access_denied(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    client = auth.register_client([REDIRECT])
    auth.authorize_mode = "deny"
    query = await authorize(http, auth, client.client_id)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["st-123"]
    auth.authorize_mode = "approve"
    assert "code" in await authorize(http, auth, client.client_id)
    with pytest.raises(ValueError, match="authorize_mode"):
        auth.authorize_mode = "maybe"  # type: ignore[assignment]


# -- refresh rotation and client authentication ----------------------------------------


async def test_refresh_rotates_and_a_spent_token_is_invalid_grant(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    client = auth.register_client([REDIRECT])
    first = await login(http, auth, client.client_id)

    rotated = await refresh(http, auth, client.client_id, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert auth.counters.spent_token_reuse == 0

    reuse = await refresh(http, auth, client.client_id, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert auth.counters.spent_token_reuse == 1

    unknown = await refresh(http, auth, client.client_id, "fxrt_never-issued")
    assert unknown.json()["error"] == "invalid_grant"
    assert auth.counters.spent_token_reuse == 1  # unknown is not reuse

    third = await refresh(http, auth, client.client_id, second["refresh_token"])
    assert third.status_code == 200
    assert auth.counters.by_grant == {"authorization_code": 1, "refresh_token": 4}
    assert auth.counters.by_outcome == {"ok": 3, "invalid_grant": 2}


async def test_refresh_reuse_grace_honours_a_spent_token_until_its_successor_is_used(
    http: httpx.AsyncClient,
) -> None:
    async with FixtureAuthServer(refresh_reuse_grace=True) as auth:

        async def rotate(token: str) -> dict[str, Any]:
            response = await refresh(http, auth, "cli", token)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert auth.verify_access_token(body["access_token"]) is not None
            return body

        async def refused(token: str) -> str:
            response = await refresh(http, auth, "cli", token)
            assert response.status_code == 400
            error: str = response.json()["error"]
            return error

        rt0 = auth.mint("cli")["refresh_token"]
        lost = (await rotate(rt0))["refresh_token"]  # the client died before saving this one
        rt1 = (await rotate(rt0))["refresh_token"]  # so it presents rt0 again: honoured
        assert rt1 not in (rt0, lost)
        assert await refused(lost) == "invalid_grant"  # revoked by the grace reuse
        rt1_again = (await rotate(rt0))["refresh_token"]  # rt1 unused yet: still honoured
        assert auth.counters.grace_reuse == 2
        assert auth.counters.spent_token_reuse == 0

        rt2 = (await rotate(rt1_again))["refresh_token"]  # the successor is used ...
        assert await refused(rt0) == "invalid_grant"  # ... so rt0 is spent for good
        assert auth.counters.spent_token_reuse == 1
        rt2_again = (await rotate(rt1_again))["refresh_token"]  # one generation behind: grace
        assert await refused(rt2) == "invalid_grant"  # revoked by that reuse, not spent:
        assert (auth.counters.grace_reuse, auth.counters.spent_token_reuse) == (3, 1)

        auth.refresh_reuse_grace = False  # switchable at run time: strict rotation again
        assert await refused(rt1_again) == "invalid_grant"
        assert auth.counters.to_dict()["grace_reuse"] == 3
        assert auth.counters.spent_token_reuse == 2
        await rotate(rt2_again)


async def test_refresh_keeps_resource_and_may_narrow_scope(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    minted = auth.mint("cli", scope="mcp offline_access", resource="http://r.example/mcp")
    narrowed = await refresh(http, auth, "cli", minted["refresh_token"], scope="mcp")
    assert narrowed.status_code == 200
    body = narrowed.json()
    assert body["scope"] == "mcp"
    assert body["resource"] == "http://r.example/mcp"
    claims = auth.verify_access_token(body["access_token"])
    assert claims is not None and claims["aud"] == "http://r.example/mcp"

    widened = await refresh(http, auth, "cli", body["refresh_token"], scope="mcp offline_access")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"
    other_resource = await refresh(
        http, auth, "cli", body["refresh_token"], resource="http://other.example/mcp"
    )
    assert other_resource.json()["error"] == "invalid_target"


async def test_confidential_client_authenticates_by_basic_or_post(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    client = auth.register_client(token_endpoint_auth_method="client_secret_basic")
    assert client.client_secret is not None
    minted = auth.mint(client.client_id)
    basic = await http.post(
        auth.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]},
        auth=(client.client_id, client.client_secret),
    )
    assert basic.status_code == 200
    wrong_secret = await refresh(
        http, auth, client.client_id, basic.json()["refresh_token"], client_secret="wrong"
    )
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    unknown_grant = await http.post(auth.token_endpoint, data={"grant_type": "password", "client_id": "x"})
    assert unknown_grant.json()["error"] == "unsupported_grant_type"
    missing_grant = await http.post(auth.token_endpoint, data={"client_id": "x"})
    assert missing_grant.json()["error"] == "invalid_request"


async def test_lifetime_is_settable_at_run_time(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    minted = auth.mint("cli")
    assert minted["expires_in"] == 600
    auth.access_token_lifetime = 2.5
    refreshed = (await refresh(http, auth, "cli", minted["refresh_token"])).json()
    assert refreshed["expires_in"] == 2.5
    with pytest.raises(ValueError, match="positive"):
        auth.access_token_lifetime = 0


async def test_access_tokens_expire_on_the_servers_clock() -> None:
    clock = VirtualClock()
    async with FixtureAuthServer(access_token_lifetime=60, clock=clock) as auth:
        token = auth.mint("cli")["access_token"]
        assert auth.verify_access_token(token) is not None
        await clock.advance(59)
        assert auth.verify_access_token(token) is not None
        await clock.advance(1)
        assert auth.verify_access_token(token) is None


async def test_introspection_and_revocation(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    token = auth.mint("cli", resource="http://r.example/mcp")["access_token"]
    active = (await http.post(auth.introspection_endpoint, data={"token": token})).json()
    assert active["active"] is True
    assert active["aud"] == "http://r.example/mcp"
    assert active["client_id"] == "cli"
    assert active["exp"] > active["iat"]
    assert auth.revoke_access_token(token) is True
    inactive = (await http.post(auth.introspection_endpoint, data={"token": token})).json()
    assert inactive == {"active": False}
    others = [auth.mint("cli")["access_token"] for _ in range(3)]
    assert auth.revoke_all_access_tokens() == 3
    assert all(auth.verify_access_token(t) is None for t in others)


async def test_rfc7009_revocation_endpoint(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    assert auth.metadata["revocation_endpoint"] == auth.revocation_endpoint
    pair = auth.mint("cli")
    refresh, access = pair["refresh_token"], pair["access_token"]
    form = {"token": refresh, "token_type_hint": "refresh_token", "client_id": "cli"}
    response = await http.post(auth.revocation_endpoint, data=form)
    assert response.status_code == 200
    assert auth.verify_access_token(access) is None  # the grant's access token goes with it
    spent = await http.post(
        auth.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "cli"},
    )
    assert spent.json()["error"] == "invalid_grant"
    again = await http.post(auth.revocation_endpoint, data=form)  # an unknown token: 200 all the same
    assert again.status_code == 200
    assert [r["revoked"] for r in auth.revocations] == ["refresh_token", None]

    other = auth.mint("someone-else")["access_token"]
    refused = await http.post(auth.revocation_endpoint, data={"token": other, "client_id": "cli"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert auth.verify_access_token(other) is not None
    confidential = auth.register_client(token_endpoint_auth_method="client_secret_basic")
    bad = await http.post(
        auth.revocation_endpoint, data={"token": other}, auth=(confidential.client_id, "wrong")
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


async def test_revocation_can_be_left_out_of_the_metadata() -> None:
    async with FixtureAuthServer(offer_revocation=False) as auth:
        assert "revocation_endpoint" not in auth.metadata


# -- faults ----------------------------------------------------------------------------


async def test_fault_waf_html_403(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    minted = auth.mint("cli")
    await auth.set_fault("waf_html_403")
    response = await refresh(http, auth, "cli", minted["refresh_token"])
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()
    # Only the token endpoint is affected, and the refresh token was not spent.
    assert (await http.get(auth.url + "/.well-known/oauth-authorization-server")).status_code == 200
    await auth.set_fault(FaultMode.OK)
    assert (await refresh(http, auth, "cli", minted["refresh_token"])).status_code == 200
    assert auth.counters.by_fault == {"waf_html_403": 1, "ok": 1}
    assert auth.counters.by_outcome == {"waf_html_403": 1, "ok": 1}


async def test_fault_server_error_500(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    await auth.set_fault("server_error_500")
    response = await refresh(http, auth, "cli", "whatever")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")


async def test_fault_rate_limited_429_with_retry_after(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    await auth.set_fault("rate_limited_429")
    default = await refresh(http, auth, "cli", "whatever")
    assert default.status_code == 429
    assert default.headers["retry-after"] == "30"
    await auth.set_fault("rate_limited_429", retry_after=7)
    assert (await refresh(http, auth, "cli", "whatever")).headers["retry-after"] == "7"
    await auth.set_fault("rate_limited_429", retry_after=None)
    assert "retry-after" not in (await refresh(http, auth, "cli", "whatever")).headers


async def test_fault_invalid_grant(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    minted = auth.mint("cli")
    await auth.set_fault("invalid_grant")
    response = await refresh(http, auth, "cli", minted["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert auth.counters.spent_token_reuse == 0


async def test_fault_unparsable_200_html_and_json(auth: FixtureAuthServer, http: httpx.AsyncClient) -> None:
    await auth.set_fault("unparsable_200")
    html = await refresh(http, auth, "cli", "whatever")
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    await auth.set_fault("unparsable_200", body="json")
    broken = await refresh(http, auth, "cli", "whatever")
    assert broken.status_code == 200
    assert broken.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        broken.json()


async def test_fault_refused_closes_the_port_and_restore_rebinds_it(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    minted = auth.mint("cli")
    port = auth.port
    assert (
        await http.get(auth.url + "/.well-known/oauth-authorization-server")
    ).status_code == 200  # keep-alive
    await auth.set_fault("refused")
    for _ in range(2):  # neither a pooled connection nor a new one gets through
        with pytest.raises(httpx.ConnectError):
            await refresh(http, auth, "cli", minted["refresh_token"])
    with pytest.raises(httpx.ConnectError):
        await http.get(auth.url + "/.well-known/oauth-authorization-server")
    await auth.set_fault("ok")
    assert auth.port == port
    response = await refresh(http, auth, "cli", minted["refresh_token"])
    assert response.status_code == 200
    assert auth.counters.total == 1


async def test_fault_hang_times_out_the_client_and_is_released_by_a_change(
    auth: FixtureAuthServer, http: httpx.AsyncClient
) -> None:
    minted = auth.mint("cli")
    await auth.set_fault("hang")
    with pytest.raises(httpx.ReadTimeout):
        await refresh(http, auth, "cli", minted["refresh_token"], timeout=0.3)
    pending = asyncio.create_task(refresh(http, auth, "cli", minted["refresh_token"]))
    async with asyncio.timeout(5):
        while auth.counters.total < 2:
            await asyncio.sleep(0.01)
    assert not pending.done()
    await auth.set_fault("ok")
    released = await asyncio.wait_for(pending, 5)
    assert released.status_code == 503  # released unprocessed: the refresh token is not spent
    # Straight after giving up, before the server can even notice the client left.
    with pytest.raises(httpx.ReadTimeout):
        await auth.set_fault("hang")
        await refresh(http, auth, "cli", minted["refresh_token"], timeout=0.2)
    await auth.set_fault("ok")
    assert (await refresh(http, auth, "cli", minted["refresh_token"])).status_code == 200
    assert auth.counters.by_fault == {"hang": 3, "ok": 1}
    assert auth.counters.by_outcome == {"hang": 3, "ok": 1}


async def test_hung_request_does_not_block_shutdown(http: httpx.AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    async with FixtureAuthServer() as server:
        await server.set_fault("hang")
        pending = asyncio.create_task(refresh(http, server, "cli", "whatever"))
        async with asyncio.timeout(5):
            while server.counters.total < 1:
                await asyncio.sleep(0.01)
        started = loop.time()
    assert loop.time() - started < 1.5
    response = await asyncio.wait_for(pending, 5)
    assert response.status_code == 503


async def test_unknown_fault_is_rejected(auth: FixtureAuthServer) -> None:
    with pytest.raises(ValueError):
        await auth.set_fault("flaky")
    assert auth.fault is FaultMode.OK


async def test_counters_record_times_and_reset(http: httpx.AsyncClient) -> None:
    clock = VirtualClock()
    async with FixtureAuthServer(clock=clock) as auth:
        minted = auth.mint("cli")
        await auth.set_fault("server_error_500")
        await refresh(http, auth, "cli", minted["refresh_token"])
        await clock.advance(3600)
        await refresh(http, auth, "cli", minted["refresh_token"])
        start = clock.wall() - 3600
        assert auth.counters.request_times == [start, start + 3600]
        assert auth.counters.requests_between(start, start + 3600) == 1
        assert auth.counters.to_dict()["by_fault"] == {"server_error_500": 2}
        held = auth.counters
        auth.reset_counters()
        assert held is auth.counters  # reset in place: a held reference stays live
        assert held.total == 0
        assert held.to_dict()["request_times"] == []
        assert held.to_dict()["by_fault"] == {}
