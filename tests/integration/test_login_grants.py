"""The other ways in, over real HTTP against the fixture servers: client credentials (secret and
private_key_jwt), the device grant, Client ID Metadata Documents, paste-back, 2025-03-26 servers."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpkeeper.auth.client_assertion import PrivateKeyError
from mcpkeeper.auth.client_credentials import perform_client_credentials_login
from mcpkeeper.auth.credentials import ClientCredentialsRefresher, CredentialStore
from mcpkeeper.auth.device import DeviceCode, perform_device_login
from mcpkeeper.auth.discovery import AuthDiscovery, discover
from mcpkeeper.auth.login import perform_login
from mcpkeeper.auth.login_errors import AuthorizationDeniedError, LoginError
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer, serve_asgi
from tests.integration.login_site import (
    ScriptedSite,
    browser_login,
    file_store,  # noqa: F401 - the `store` fixture
    fixture_servers,  # noqa: F401 - the `fixtures` fixture
    site_fixture,  # noqa: F401 - the `site` fixture
)

pytestmark = pytest.mark.integration


def _ec_key(directory: Path, mode: int = 0o600) -> tuple[Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / "service.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(mode)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public.decode()


# -- client credentials -------------------------------------------------------------------


async def test_client_credentials_with_a_secret_log_in_and_renew_without_a_refresh_token(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    client = auth.register_client(token_endpoint_auth_method="client_secret_basic", client_id="svc")
    assert client.client_secret is not None
    result = await perform_client_credentials_login(
        mcp.url, "svc", store=store, client_id="svc", client_secret=client.client_secret
    )
    assert result.auth_required and not result.registered_client and not result.has_refresh_token
    assert result.warnings == ()  # renewable without a refresh token: nothing to warn about
    assert client.client_secret not in repr(result) and client.client_secret not in str(result.warnings)
    login = store.load("svc")
    assert login is not None and login.grant == "client_credentials" and login.token is not None
    assert login.token.refresh_token is None and login.token.renewable
    assert "offline_access" not in login.scopes
    assert auth.verify_access_token(login.token.access_token) is not None

    inputs = store.monitor_inputs("svc")
    assert inputs is not None and isinstance(inputs.refresher, ClientCredentialsRefresher)
    renewed = await inputs.refresher(login.token)
    assert renewed.access_token != login.token.access_token and renewed.renewable
    stored = store.load("svc")
    assert stored is not None and stored.token is not None
    assert stored.token.access_token == renewed.access_token  # on disk before it is handed out
    assert auth.counters.by_grant["client_credentials"] == 2


async def test_client_credentials_with_a_private_key_sign_a_fresh_assertion_each_time(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore, tmp_path: Path
) -> None:
    auth, mcp = fixtures
    key, public = _ec_key(tmp_path)
    auth.register_client(
        token_endpoint_auth_method="private_key_jwt", client_id="robot", public_key_pem=public
    )
    await perform_client_credentials_login(mcp.url, "robot", store=store, client_id="robot", private_key=key)
    login = store.load("robot")
    assert login is not None and login.client.auth_method == "private_key_jwt"
    assert login.client.private_key_path == str(key.resolve())
    assert "PRIVATE KEY" not in json.dumps(login.to_dict())  # the path is stored, never the key
    inputs = store.monitor_inputs("robot")
    assert inputs is not None and login.token is not None
    await inputs.refresher(login.token)  # a second assertion: the fixture refuses a replayed jti
    assert auth.counters.by_outcome["ok"] == 2


async def test_a_private_key_others_may_read_is_refused_before_any_request(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore, tmp_path: Path
) -> None:
    auth, mcp = fixtures
    key, public = _ec_key(tmp_path, mode=0o644)
    auth.register_client(
        token_endpoint_auth_method="private_key_jwt", client_id="robot", public_key_pem=public
    )
    with pytest.raises(PrivateKeyError) as refused:
        await perform_client_credentials_login(
            mcp.url, "robot", store=store, client_id="robot", private_key=key
        )
    assert "chmod 600" in str(refused.value) and "BEGIN" not in str(refused.value)
    assert auth.counters.by_grant["client_credentials"] == 0
    assert store.load("robot") is None


async def test_a_wrong_secret_is_the_servers_verdict_and_stores_nothing(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    auth.register_client(token_endpoint_auth_method="client_secret_post", client_id="svc")
    with pytest.raises(LoginError) as refused:
        await perform_client_credentials_login(
            mcp.url, "svc", store=store, client_id="svc", client_secret="not-the-secret"
        )
    assert "invalid_client" in str(refused.value) and "not-the-secret" not in str(refused.value)
    assert store.load("svc") is None


# -- device authorization grant -----------------------------------------------------------


async def test_device_login_polls_until_the_code_is_entered_elsewhere(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    shown: list[DeviceCode] = []
    visits: list[asyncio.Task[httpx.Response]] = []

    async def enter_code(url: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=5.0) as http:
            return await http.get(url)

    def show(code: DeviceCode) -> None:  # the user, on their phone, after a moment
        shown.append(code)
        assert code.verification_uri_complete is not None
        visits.append(asyncio.get_running_loop().create_task(enter_code(code.verification_uri_complete)))

    result = await perform_device_login(mcp.url, "headless", store=store, show_code=show, timeout=30)
    assert (await visits[0]).status_code == 200
    assert result.auth_required and result.registered_client and result.has_refresh_token
    assert shown[0].user_code and shown[0].device_code not in repr(shown[0])
    login = store.load("headless")
    assert login is not None and login.grant == "device_code" and login.token is not None
    assert auth.verify_access_token(login.token.access_token) is not None
    registered = auth.registrations[-1]
    assert registered["grant_types"] == ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
    assert registered["application_type"] == "native"


async def test_device_login_denied_is_a_clear_error(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    auth.authorize_mode = "deny"

    def deny(code: DeviceCode) -> None:
        assert auth.approve_device(code.user_code, approve=False)

    with pytest.raises(AuthorizationDeniedError):
        await perform_device_login(mcp.url, "headless", store=store, show_code=deny, timeout=30)
    assert store.load("headless") is None


async def test_device_login_needs_a_server_that_offers_it(site: ScriptedSite, store: CredentialStore) -> None:
    with pytest.raises(LoginError) as refused:
        await perform_device_login(site.mcp_url, "x", store=store, timeout=5)
    assert "does not offer the device authorization grant" in str(refused.value)


# -- Client ID Metadata Documents ---------------------------------------------------------


async def test_a_client_metadata_document_is_the_client_id_where_supported(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures

    async def document(request: Request) -> Response:
        return JSONResponse(
            {
                "client_id": str(request.url),
                "client_name": "mcpkeeper (tests)",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "token_endpoint_auth_method": "none",
            }
        )

    app = Starlette(routes=[Route("/client.json", document)])
    async with serve_asgi(app, lifespan="off") as published:
        url = f"{published.url}/client.json"
        result = await browser_login(mcp.url, "cimd", store=store, client_metadata_url=url)
        assert result.client_id == url and not result.registered_client
        assert auth.cimd_fetches == [url] and auth.registrations == []
        again = await browser_login(mcp.url, "cimd", store=store)  # the stored client is reused
        assert again.client_id == url
    login = store.load("cimd")
    assert login is not None and login.client.metadata_document


async def test_without_server_support_the_metadata_url_falls_back_to_registration(
    site: ScriptedSite, store: CredentialStore
) -> None:
    result = await browser_login(
        site.mcp_url, "plain", store=store, client_metadata_url="https://client.example.com/mcpkeeper.json"
    )
    assert result.registered_client and site.registrations == 1


@pytest.mark.parametrize(
    "url", ["https://client.example.com", "http://client.example.com/c.json", "https://x.example/c.json#f"]
)
async def test_a_bad_client_metadata_url_is_refused_before_any_request(
    site: ScriptedSite, store: CredentialStore, url: str
) -> None:
    with pytest.raises(LoginError):
        await perform_login(site.mcp_url, "plain", store=store, client_metadata_url=url, open_browser=None)
    assert site.hits == []


# -- paste-back ---------------------------------------------------------------------------


async def test_the_url_the_browser_ended_on_can_be_pasted(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    ended_on: asyncio.Queue[str] = asyncio.Queue()

    async def remote_browser(url: str) -> None:  # approves, but cannot reach our loopback
        async with httpx.AsyncClient(timeout=5.0) as http:
            answer = await http.get(url, follow_redirects=False)
        await ended_on.put(answer.headers["location"])

    tasks: list[asyncio.Task[None]] = []

    async def pasted() -> AsyncIterator[str]:
        callback = await ended_on.get()
        yield "not a url at all"
        yield callback.replace("state=", "state=forged")  # another login's: ignored
        yield callback

    result = await perform_login(
        mcp.url,
        "pasted",
        store=store,
        open_browser=lambda url: tasks.append(asyncio.get_running_loop().create_task(remote_browser(url))),
        pasted=pasted(),
        timeout=30,
    )
    assert result.auth_required
    login = store.load("pasted")
    assert login is not None and login.token is not None
    assert auth.verify_access_token(login.token.access_token) is not None


# -- 2025-03-26 servers -------------------------------------------------------------------


async def test_a_server_without_resource_metadata_uses_its_origin(store: CredentialStore) -> None:
    async with (
        FixtureAuthServer() as auth,
        FixtureMCPServer(auth, resource_metadata=False) as mcp,
    ):
        found = await discover(mcp.url)
        assert isinstance(found, AuthDiscovery)
        assert found.issuer == mcp.base_url and found.resource_metadata is None
        result = await browser_login(mcp.url, "old", store=store)
        assert result.issuer == mcp.base_url
        login = store.load("old")
        assert login is not None and login.token is not None
        assert auth.verify_access_token(login.token.access_token) is not None


async def test_a_server_without_any_metadata_uses_the_default_endpoints(store: CredentialStore) -> None:
    async with (
        FixtureAuthServer(publish_metadata=False) as auth,
        FixtureMCPServer(auth, resource_metadata=False) as mcp,
    ):
        found = await discover(mcp.url)
        assert isinstance(found, AuthDiscovery)
        assert found.metadata.token_endpoint == f"{mcp.base_url}/token"
        assert found.metadata.registration_endpoint == f"{mcp.base_url}/register"
        result = await browser_login(mcp.url, "older", store=store)
        assert result.registered_client and result.has_refresh_token


async def test_registration_says_it_is_a_native_application(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    await browser_login(mcp.url, "native", store=store)
    assert auth.registrations[0]["application_type"] == "native"
    assert auth.store.clients[next(iter(auth.store.clients))].application_type == "native"


async def test_an_assertion_is_what_the_server_verifies(tmp_path: Path) -> None:
    from mcpkeeper.auth.client_assertion import PrivateKeyJwt

    key, public = _ec_key(tmp_path)
    first, second = (PrivateKeyJwt("robot", key, "https://as.example.com")() for _ in range(2))
    claims = jwt.decode(first, public, algorithms=["ES256"], audience="https://as.example.com")
    assert claims["iss"] == claims["sub"] == "robot" and claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(first)["alg"] == "ES256"
    assert (
        jwt.decode(second, public, algorithms=["ES256"], audience="https://as.example.com")["jti"]
        != claims["jti"]
    )
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


async def test_credentials_stay_with_the_issuer_that_gave_them(
    site: ScriptedSite, store: CredentialStore
) -> None:
    """SEP-2352: the server moved to another authorization server: register there, reuse nothing."""
    first = await browser_login(site.mcp_url, "moved", store=store)
    assert first.issuer == site.base and first.client_id == "scripted-client-1"
    async with FixtureAuthServer() as elsewhere:

        async def moved(request: Request) -> Response:
            return JSONResponse({"resource": site.mcp_url, "authorization_servers": [elsewhere.issuer]})

        site.answer("/.well-known/oauth-protected-resource/mcp", moved)
        second = await browser_login(site.mcp_url, "moved", store=store)
        assert second.issuer == elsewhere.issuer and second.registered_client
        assert len(elsewhere.registrations) == 1
        assert "scripted-client-1" not in elsewhere.store.clients
        assert elsewhere.counters.by_grant["authorization_code"] == 1
    login = store.load("moved")
    assert login is not None and login.issuer == second.issuer and login.client.client_id == second.client_id
