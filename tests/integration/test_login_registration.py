"""Dynamic client registration over real HTTP: the fixture AS, and registration endpoints that misbehave."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from mcpkeeper.auth.discovery import AuthServerMetadata, fetch_authorization_server_metadata
from mcpkeeper.auth.login_errors import RegistrationError
from mcpkeeper.auth.registration import register_client
from mcpkeeper.testing import FixtureAuthServer
from tests.integration.login_site import (
    ScriptedSite,
    fixed,
    site_fixture,  # noqa: F401 - the `site` fixture
)

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:43210/callback"


async def _metadata(issuer: str) -> AuthServerMetadata:
    import httpx

    async with httpx.AsyncClient(timeout=5.0) as http:
        return await fetch_authorization_server_metadata(issuer, http=http)


async def test_registers_a_public_client_at_the_fixture() -> None:
    async with FixtureAuthServer() as auth:
        client = await register_client(
            await _metadata(auth.issuer), [REDIRECT], scopes=["mcp", "offline_access"]
        )
        assert client.dynamic
        assert client.auth_method == "none" and client.client_secret is None
        assert client.redirect_uris == (REDIRECT,)
        assert client.registration_endpoint == auth.registration_endpoint
        registered = auth.store.clients[client.client_id]
        assert registered.token_endpoint_auth_method == "none"
        assert registered.grant_types == ("authorization_code", "refresh_token")
        assert registered.redirect_uris == (REDIRECT,)


async def _registration_error(site: ScriptedSite) -> str:
    with pytest.raises(RegistrationError) as caught:
        await register_client(await _metadata(site.base), [REDIRECT])
    message = str(caught.value)
    assert "\n" not in message
    return message


async def test_refusal_with_an_oauth_error(site: ScriptedSite) -> None:
    site.answer(
        "/register",
        fixed(
            JSONResponse(
                {"error": "invalid_redirect_uri", "error_description": "no loopback"}, status_code=400
            )
        ),
    )
    message = await _registration_error(site)
    assert "refused with HTTP 400: invalid_redirect_uri (no loopback)" in message


async def test_server_error(site: ScriptedSite) -> None:
    site.answer("/register", fixed(Response("upstream exploded", status_code=503)))
    assert "failed with HTTP 503" in await _registration_error(site)


async def test_forbidden_html(site: ScriptedSite) -> None:
    site.answer("/register", fixed(HTMLResponse("<h1>Forbidden</h1>", status_code=403)))
    message = await _registration_error(site)
    assert "HTTP 403" in message and "HTML page" in message


async def test_html_with_success_status(site: ScriptedSite) -> None:
    site.answer("/register", fixed(HTMLResponse("<html>Welcome</html>", status_code=201)))
    assert "HTML page, not JSON" in await _registration_error(site)


async def test_success_without_client_id(site: ScriptedSite) -> None:
    site.answer("/register", fixed(JSONResponse({"client_name": "x"}, status_code=201)))
    assert "has no client_id" in await _registration_error(site)


async def test_unsupported_auth_method_in_the_answer(site: ScriptedSite) -> None:
    site.answer(
        "/register", fixed(JSONResponse({"client_id": "c", "token_endpoint_auth_method": "private_key_jwt"}))
    )
    assert "unsupported token_endpoint_auth_method" in await _registration_error(site)


async def test_confidential_answer_is_honoured(site: ScriptedSite) -> None:
    async def confidential(request: Request) -> Response:
        return JSONResponse(
            {"client_id": "c", "client_secret": "s", "token_endpoint_auth_method": "client_secret_post"}
        )

    site.answer("/register", confidential)
    client = await register_client(await _metadata(site.base), [REDIRECT])
    assert (client.client_id, client.client_secret, client.auth_method) == ("c", "s", "client_secret_post")


async def test_unreachable_registration_endpoint(site: ScriptedSite) -> None:
    metadata = await _metadata(site.base)
    from dataclasses import replace

    dead = replace(metadata, registration_endpoint="http://127.0.0.1:1/register")
    with pytest.raises(RegistrationError, match="cannot reach the registration endpoint"):
        await register_client(dead, [REDIRECT])
