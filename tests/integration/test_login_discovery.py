"""Discovery over real HTTP: the fixture servers, and a scripted site for every way metadata goes wrong."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mcpkeeper.auth.discovery import AuthDiscovery, NoAuthRequired, discover
from mcpkeeper.auth.login_errors import DiscoveryError
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from tests.integration.login_site import (
    ScriptedSite,
    fixed,
    scripted_site,
    site_fixture,  # noqa: F401 - the `site` fixture
)

pytestmark = pytest.mark.integration


async def _discovery_error(url: str) -> str:
    with pytest.raises(DiscoveryError) as caught:
        await discover(url, timeout=5.0)
    message = str(caught.value)
    assert "\n" not in message
    return message


async def test_fixture_server_is_discovered_end_to_end() -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        found = await discover(mcp.url)
        assert isinstance(found, AuthDiscovery)
        assert found.issuer == auth.issuer
        assert found.metadata.token_endpoint == auth.token_endpoint
        assert found.metadata.registration_endpoint == auth.registration_endpoint
        assert found.resource == mcp.url
        assert found.challenge is not None and found.challenge.resource_metadata == mcp.resource_metadata_url
        assert "offline_access" in found.scopes and "mcp" in found.scopes
        assert found.offers_offline_access


async def test_open_server_needs_no_auth() -> None:
    async with FixtureMCPServer(require_auth=False) as mcp:
        found = await discover(mcp.url)
        assert isinstance(found, NoAuthRequired)
        assert not found.auth_required


async def test_configured_issuer_overrides_the_server(site: ScriptedSite) -> None:
    async with FixtureAuthServer() as auth:
        found = await discover(site.mcp_url, issuer=auth.issuer)
        assert isinstance(found, AuthDiscovery)
        assert found.issuer == auth.issuer


async def test_scripted_site_defaults_work(site: ScriptedSite) -> None:
    found = await discover(site.mcp_url)
    assert isinstance(found, AuthDiscovery)
    assert found.issuer == site.base
    assert found.scopes == ("mcp",)


async def test_server_without_header_or_resource_metadata_falls_back_to_its_origin(
    site: ScriptedSite,
) -> None:
    site.answer("/mcp", fixed(Response(status_code=401)))
    site.answer("/.well-known/oauth-protected-resource/mcp", fixed(Response(status_code=404)))
    found = await discover(site.mcp_url)
    assert isinstance(found, AuthDiscovery)
    assert found.issuer == site.base
    assert found.resource == site.mcp_url
    assert (
        "GET /.well-known/oauth-protected-resource" in site.hits
    )  # root well-known tried after the path one


async def test_root_well_known_resource_metadata_is_used(site: ScriptedSite) -> None:
    site.answer("/mcp", fixed(Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})))
    site.answer("/.well-known/oauth-protected-resource/mcp", fixed(Response(status_code=404)))

    async def root_prm(request: Request) -> Response:
        return JSONResponse({"resource": site.base, "authorization_servers": [site.base]})

    site.answer("/.well-known/oauth-protected-resource", root_prm)
    found = await discover(site.mcp_url)
    assert isinstance(found, AuthDiscovery)
    assert found.resource == site.base


async def test_same_origin_redirect_is_followed(site: ScriptedSite) -> None:
    async def moved(request: Request) -> Response:
        return RedirectResponse("/as-metadata.json", status_code=301)

    async def metadata(request: Request) -> Response:
        return JSONResponse(site.metadata())

    site.answer("/.well-known/oauth-authorization-server", moved)
    site.answer("/as-metadata.json", metadata)
    assert isinstance(await discover(site.mcp_url), AuthDiscovery)


async def test_garbage_www_authenticate_is_a_clear_error(site: ScriptedSite) -> None:
    site.answer(
        "/mcp", fixed(Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="unclosed'}))
    )
    assert "unreadable WWW-Authenticate header" in await _discovery_error(site.mcp_url)


async def test_non_oauth_scheme_is_a_clear_error(site: ScriptedSite) -> None:
    site.answer("/mcp", fixed(Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="x"'})))
    assert "speaks only OAuth" in await _discovery_error(site.mcp_url)


async def test_metadata_that_is_not_json(site: ScriptedSite) -> None:
    site.answer(
        "/.well-known/oauth-authorization-server", fixed(Response("{issuer: nope", media_type="text/plain"))
    )
    assert "is not valid JSON" in await _discovery_error(site.mcp_url)


async def test_metadata_that_is_html(site: ScriptedSite) -> None:
    site.answer(
        "/.well-known/oauth-authorization-server", fixed(HTMLResponse("<html><body>Sign in</body></html>"))
    )
    assert "HTML page, not JSON" in await _discovery_error(site.mcp_url)


async def test_metadata_over_one_mebibyte(site: ScriptedSite) -> None:
    huge = json.dumps({**site.metadata(), "padding": "x" * (1 << 20)})
    site.answer(
        "/.well-known/oauth-authorization-server", fixed(Response(huge, media_type="application/json"))
    )
    assert "larger than 1048576 bytes" in await _discovery_error(site.mcp_url)


async def test_metadata_over_one_mebibyte_without_content_length(site: ScriptedSite) -> None:
    async def streamed(request: Request) -> Response:
        from starlette.responses import StreamingResponse

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(300):
                yield b" " * 4096  # 1.2 MB of whitespace, never announced

        return StreamingResponse(chunks(), media_type="application/json")

    site.answer("/.well-known/oauth-authorization-server", streamed)
    assert "larger than" in await _discovery_error(site.mcp_url)


async def test_metadata_missing_required_endpoints(site: ScriptedSite) -> None:
    async def no_token_endpoint(request: Request) -> Response:
        doc = site.metadata()
        del doc["token_endpoint"]
        return JSONResponse(doc)

    site.answer("/.well-known/oauth-authorization-server", no_token_endpoint)
    assert "has no token_endpoint" in await _discovery_error(site.mcp_url)


async def test_metadata_with_mismatched_issuer(site: ScriptedSite) -> None:
    async def other_issuer(request: Request) -> Response:
        return JSONResponse({**site.metadata(), "issuer": "https://attacker.example"})

    site.answer("/.well-known/oauth-authorization-server", other_issuer)
    message = await _discovery_error(site.mcp_url)
    assert "names issuer https://attacker.example" in message and "refusing it" in message


async def test_plain_http_authorization_endpoint_off_loopback(site: ScriptedSite) -> None:
    async def insecure(request: Request) -> Response:
        return JSONResponse(
            {**site.metadata(), "authorization_endpoint": "http://login.example.com/authorize"}
        )

    site.answer("/.well-known/oauth-authorization-server", insecure)
    assert "must use https" in await _discovery_error(site.mcp_url)


async def test_redirect_to_another_origin_is_refused(site: ScriptedSite) -> None:
    async with scripted_site() as elsewhere:
        target = f"{elsewhere.base}/.well-known/oauth-protected-resource/mcp"
        site.answer(
            "/.well-known/oauth-protected-resource/mcp", fixed(RedirectResponse(target, status_code=302))
        )
        message = await _discovery_error(site.mcp_url)
        assert "to another origin" in message
        assert not elsewhere.hits  # never contacted


async def test_resource_metadata_for_another_resource_is_refused(site: ScriptedSite) -> None:
    async def foreign(request: Request) -> Response:
        return JSONResponse({"resource": f"{site.base}/other", "authorization_servers": [site.base]})

    site.answer("/.well-known/oauth-protected-resource/mcp", foreign)
    assert "is for" in await _discovery_error(site.mcp_url)


async def test_something_that_is_not_an_mcp_server(site: ScriptedSite) -> None:
    site.answer("/mcp", fixed(Response("nope", status_code=404)))
    site.answer("/.well-known/oauth-protected-resource/mcp", fixed(Response(status_code=404)))
    message = await _discovery_error(site.mcp_url)
    assert "does not look like an MCP server" in message and "initialize answered HTTP 404" in message


_JSONRPC_RESULT = {"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18", "capabilities": {}}}
_SSE_RESULT = f"event: message\ndata: {json.dumps(_JSONRPC_RESULT)}\n\n"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (HTMLResponse("<html>a blog</html>"), "HTTP 200 text/html, not a JSON-RPC response"),
        (Response(b"ok"), "HTTP 200 without a content type, not a JSON-RPC response"),
        (Response(status_code=204), "HTTP 204 without a content type, not a JSON-RPC response"),
        (JSONResponse({"status": "ok"}), "HTTP 200 with JSON that is not a JSON-RPC response"),
        (JSONResponse([_JSONRPC_RESULT]), "HTTP 200 with JSON that is not a JSON-RPC response"),
        (Response("{oops", media_type="application/json"), "HTTP 200 with invalid JSON"),
    ],
)
async def test_a_2xx_that_is_not_an_mcp_answer_is_not_an_mcp_server(
    site: ScriptedSite, answer: Response, why: str
) -> None:
    # A web site that answers every request with a page must not pass for an open MCP server.
    site.answer("/mcp", fixed(answer))
    message = await _discovery_error(site.mcp_url)
    assert message == f"{site.mcp_url} is not an MCP server: initialize answered {why}"
    assert site.hits == ["GET /mcp", "POST /mcp"]  # nothing else was asked of it


@pytest.mark.parametrize(
    "answer",
    [
        JSONResponse(_JSONRPC_RESULT),
        JSONResponse({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad version"}}),
        Response(_SSE_RESULT, media_type="text/event-stream"),
    ],
    ids=["json-result", "json-error", "event-stream"],
)
async def test_a_json_rpc_answer_or_an_event_stream_needs_no_auth(
    site: ScriptedSite, answer: Response
) -> None:
    site.answer("/mcp", fixed(answer))
    found = await discover(site.mcp_url, timeout=5.0)
    assert isinstance(found, NoAuthRequired)


async def test_a_page_behind_a_configured_issuer_is_still_logged_into(site: ScriptedSite) -> None:
    # Some gateways answer an unauthenticated client with a login page; the user named the issuer.
    site.answer("/mcp", fixed(HTMLResponse("<html>sign in</html>")))
    found = await discover(site.mcp_url, issuer=site.base, timeout=5.0)
    assert isinstance(found, AuthDiscovery)
    assert found.issuer == site.base


async def test_no_authorization_server_metadata_anywhere(site: ScriptedSite) -> None:
    site.answer("/.well-known/oauth-authorization-server", fixed(Response(status_code=404)))
    assert "no OAuth authorization server metadata found" in await _discovery_error(site.mcp_url)


async def test_unreachable_server() -> None:
    assert "cannot reach the MCP server" in await _discovery_error("http://127.0.0.1:1/mcp")
