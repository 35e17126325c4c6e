"""perform_login in-process over real HTTP: the happy path against the fixtures, and every bad callback."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
from mcpkeeper.auth.login import perform_login
from mcpkeeper.auth.login_errors import (
    AuthorizationDeniedError,
    CallbackError,
    LoginError,
    LoginTimeoutError,
)
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.net import bind_loopback
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from tests.integration.login_site import (
    FollowingBrowser,
    ScriptedSite,
    browser_login,
    file_store,  # noqa: F401 - the `store` fixture
    fixed,
    fixture_servers,  # noqa: F401 - the `fixtures` fixture
    redirect_with,
    site_fixture,  # noqa: F401 - the `site` fixture
    with_query,
)

pytestmark = pytest.mark.integration


async def test_login_stores_a_working_grant_and_reuses_the_registration(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore, tmp_path: Path
) -> None:
    auth, mcp = fixtures
    shown: list[str] = []
    browser = FollowingBrowser()
    result = await browser_login(mcp.url, "notes", store=store, show_url=shown.append, browser=browser)
    assert shown == browser.urls  # the URL is always shown, browser or not
    assert result.auth_required and result.registered_client
    assert result.issuer == auth.issuer and result.has_refresh_token
    assert result.granted_scope == "mcp offline_access"
    login = store.load("notes")
    assert login is not None and login.token is not None
    assert auth.verify_access_token(login.token.access_token) is not None
    assert login.resource == mcp.url
    assert stat.S_IMODE((tmp_path / "secrets" / "notes.json").stat().st_mode) == 0o600
    assert login.token.access_token not in repr(result)

    clients_before = len(auth.store.clients)
    second = await browser_login(mcp.url, "notes", store=store)
    assert not second.registered_client
    assert second.client_id == result.client_id
    assert len(auth.store.clients) == clients_before
    relogged = store.load("notes")
    assert relogged is not None and relogged.token is not None
    assert relogged.token.access_token != login.token.access_token


async def test_a_rejected_registration_is_replaced_on_the_next_login(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    _, mcp = fixtures
    first = await browser_login(mcp.url, "notes", store=store)
    login = store.load("notes")
    assert login is not None
    store.save("notes", replace(login, registration_rejected=True))
    second = await browser_login(mcp.url, "notes", store=store)
    assert second.registered_client and second.client_id != first.client_id
    stored = store.load("notes")
    assert stored is not None and not stored.registration_rejected


async def test_a_static_client_is_used_as_given(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    client = auth.register_client(
        ["http://127.0.0.1/callback"], token_endpoint_auth_method="client_secret_post", client_id="static-one"
    )
    clients = len(auth.store.clients)
    result = await browser_login(
        mcp.url, "notes", store=store, client_id="static-one", client_secret=client.client_secret
    )
    assert result.client_id == "static-one" and not result.registered_client
    assert len(auth.store.clients) == clients
    stored = store.load("notes")
    assert stored is not None and stored.client.auth_method == "client_secret_basic"
    assert stored.client.client_secret == client.client_secret


async def test_access_denied_is_a_clear_error_and_stores_nothing(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    auth, mcp = fixtures
    auth.authorize_mode = "deny"
    browser = FollowingBrowser()
    with pytest.raises(AuthorizationDeniedError, match="refused the login \\(access_denied"):
        await browser_login(mcp.url, "notes", store=store, timeout=10, browser=browser)
    assert browser.callback_statuses == [400]
    assert store.load("notes") is None


async def test_a_callback_with_the_wrong_state_is_ignored(site: ScriptedSite, store: CredentialStore) -> None:
    def forged(callback: str) -> list[str]:
        return [
            with_query(callback, state="forged-state"),
            with_query(callback, state=None),
            with_query(callback, state="forged-state", code=None, error="access_denied"),
        ]

    browser = FollowingBrowser(extra=forged)
    result = await browser_login(site.mcp_url, "notes", store=store, timeout=10, browser=browser)
    assert browser.callback_statuses == [400, 400, 400, 200]  # three ignored, then the real one
    assert result.auth_required and store.load("notes") is not None


async def test_a_callback_without_code(site: ScriptedSite, store: CredentialStore) -> None:
    browser = FollowingBrowser(rewrite=lambda url: with_query(url, code=None))
    with pytest.raises(CallbackError, match="neither a code nor an error"):
        await browser_login(site.mcp_url, "notes", store=store, timeout=10, browser=browser)
    assert store.load("notes") is None


async def test_another_error_from_the_server(site: ScriptedSite, store: CredentialStore) -> None:
    async def invalid_scope(request: Request) -> Response:
        params = request.query_params
        return redirect_with(params["redirect_uri"], {"error": "invalid_scope", "state": params["state"]})

    site.answer("/authorize", invalid_scope)
    with pytest.raises(CallbackError, match="invalid_scope") as caught:
        await browser_login(site.mcp_url, "notes", store=store, timeout=10)
    assert not isinstance(caught.value, AuthorizationDeniedError)


async def test_a_callback_from_another_issuer_is_refused(site: ScriptedSite, store: CredentialStore) -> None:
    browser = FollowingBrowser(rewrite=lambda url: with_query(url, iss="https://mix-up.example"))
    with pytest.raises(CallbackError, match=r"names issuer https://mix-up\.example"):
        await browser_login(site.mcp_url, "notes", store=store, timeout=10, browser=browser)
    assert store.load("notes") is None


async def test_nobody_logs_in(site: ScriptedSite, store: CredentialStore) -> None:
    shown: list[str] = []
    with pytest.raises(LoginTimeoutError, match="no login completed within"):
        await perform_login(
            site.mcp_url, "notes", store=store, open_browser=None, show_url=shown.append, timeout=0.5
        )
    assert len(shown) == 1 and shown[0].startswith(f"{site.base}/authorize?")
    assert store.load("notes") is None


async def test_token_response_without_access_token(site: ScriptedSite, store: CredentialStore) -> None:
    site.answer("/token", fixed(JSONResponse({"token_type": "Bearer", "expires_in": 60})))
    with pytest.raises(LoginError, match="no access_token in the response"):
        await browser_login(site.mcp_url, "notes", store=store, timeout=10)
    assert store.load("notes") is None


async def test_code_exchange_sends_pkce_and_resource(site: ScriptedSite, store: CredentialStore) -> None:
    browser = FollowingBrowser()
    await browser_login(site.mcp_url, "notes", store=store, timeout=10, browser=browser)
    authorize = dict(_query(browser.urls[0]))
    assert authorize["code_challenge_method"] == "S256" and authorize["resource"] == site.mcp_url
    assert len(authorize["state"]) >= 32
    (form,) = site.token_forms
    assert form["grant_type"] == "authorization_code" and form["resource"] == site.mcp_url
    assert 43 <= len(form["code_verifier"]) <= 128
    assert form["redirect_uri"] == authorize["redirect_uri"]


def _query(url: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    return parse_qsl(urlsplit(url).query)


async def test_no_refresh_token_is_warned_about(site: ScriptedSite, store: CredentialStore) -> None:
    site.answer(
        "/token", fixed(JSONResponse({"access_token": "a-value", "token_type": "Bearer", "expires_in": 60}))
    )
    result = await browser_login(site.mcp_url, "notes", store=store, timeout=10)
    assert not result.has_refresh_token
    assert any("no refresh token" in warning for warning in result.warnings)


async def test_a_failed_relogin_keeps_the_previous_login(site: ScriptedSite, store: CredentialStore) -> None:
    await browser_login(site.mcp_url, "notes", store=store, timeout=10)
    before = store.load("notes")
    site.answer("/token", fixed(JSONResponse({"error": "invalid_grant"}, status_code=400)))
    with pytest.raises(LoginError, match="did not accept the authorization code"):
        await browser_login(site.mcp_url, "notes", store=store, timeout=10)
    assert store.load("notes") == before


async def test_a_name_holding_another_remote_is_refused(site: ScriptedSite, store: CredentialStore) -> None:
    store.save(
        "notes",
        StoredLogin(
            "https://other.example/mcp",
            "https://other.example",
            "https://other.example/a",
            "https://other.example/t",
            ClientRegistration("c"),
        ),
    )
    with pytest.raises(LoginError, match=r"already holds a login for https://other\.example/mcp"):
        await perform_login(site.mcp_url, "notes", store=store, open_browser=None, timeout=1)


async def test_an_open_server_stores_nothing(store: CredentialStore) -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        result = await perform_login(mcp.url, "open", store=store, open_browser=None)
    assert not result.auth_required
    assert store.load("open") is None


async def test_a_busy_callback_port(site: ScriptedSite, store: CredentialStore) -> None:
    with bind_loopback(0) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(LoginError, match=f"cannot listen for the login callback on 127.0.0.1:{port}"):
            await perform_login(site.mcp_url, "notes", store=store, callback_port=port, open_browser=None)


async def test_a_busy_registered_port_falls_back_and_registers_again(
    fixtures: tuple[FixtureAuthServer, FixtureMCPServer], store: CredentialStore
) -> None:
    from urllib.parse import urlsplit

    auth, mcp = fixtures
    first = await browser_login(mcp.url, "notes", store=store)
    login = store.load("notes")
    assert login is not None
    registered_port = urlsplit(login.client.redirect_uris[0]).port
    assert registered_port is not None
    # SO_REUSEADDR as our own listeners use: the first login's connections may still sit
    # in TIME_WAIT on that port, and only a live listener should make it busy.
    with bind_loopback(registered_port):
        second = await browser_login(mcp.url, "notes", store=store)
    assert second.registered_client and second.client_id != first.client_id
    relogged = store.load("notes")
    assert relogged is not None
    assert urlsplit(relogged.client.redirect_uris[0]).port != registered_port
    assert auth.verify_access_token(relogged.token.access_token if relogged.token else "") is not None
