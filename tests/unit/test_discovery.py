"""The pure parts of discovery: well-known URLs, metadata validation, scope choice, URL normalisation."""

from __future__ import annotations

from typing import Any

import pytest

from mcpkeeper.auth.discovery import (
    AuthServerMetadata,
    ProtectedResourceMetadata,
    authorization_server_metadata_urls,
    choose_scopes,
    normalize_server_url,
    protected_resource_metadata_urls,
)
from mcpkeeper.auth.login_errors import DiscoveryError
from mcpkeeper.auth.www_authenticate import BearerChallenge

ISSUER = "https://auth.example.com"


def _document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "registration_endpoint": f"{ISSUER}/register",
        "scopes_supported": ["mcp", "offline_access"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def test_protected_resource_urls_path_specific_first() -> None:
    assert protected_resource_metadata_urls("https://mcp.example.com/tenant/mcp") == [
        "https://mcp.example.com/.well-known/oauth-protected-resource/tenant/mcp",
        "https://mcp.example.com/.well-known/oauth-protected-resource",
    ]
    assert protected_resource_metadata_urls("https://mcp.example.com/") == [
        "https://mcp.example.com/.well-known/oauth-protected-resource"
    ]


def test_authorization_server_urls_for_an_issuer_with_a_path() -> None:
    assert authorization_server_metadata_urls("https://auth.example.com/tenant1/") == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example.com/.well-known/openid-configuration/tenant1",
        "https://auth.example.com/tenant1/.well-known/openid-configuration",
        "https://auth.example.com/.well-known/oauth-authorization-server",
    ]


def test_authorization_server_urls_for_a_bare_issuer() -> None:
    assert authorization_server_metadata_urls("https://auth.example.com") == [
        "https://auth.example.com/.well-known/oauth-authorization-server",
        "https://auth.example.com/.well-known/openid-configuration",
    ]


def test_valid_metadata_is_read() -> None:
    metadata = AuthServerMetadata.from_document(_document(), expected_issuer=ISSUER, url="u")
    assert metadata.token_endpoint == f"{ISSUER}/token"
    assert metadata.registration_endpoint == f"{ISSUER}/register"
    assert metadata.scopes_supported == ("mcp", "offline_access")
    assert metadata.supports_s256


def test_issuer_trailing_slash_is_tolerated() -> None:
    AuthServerMetadata.from_document(_document(issuer=ISSUER + "/"), expected_issuer=ISSUER, url="u")


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"issuer": "https://evil.example.com"}, "names issuer https://evil.example.com, expected"),
        ({"issuer": None}, "has no issuer"),
        ({"token_endpoint": None}, "has no token_endpoint"),
        ({"authorization_endpoint": None}, "has no authorization_endpoint"),
        ({"authorization_endpoint": 42}, "has no authorization_endpoint"),
        ({"authorization_endpoint": "http://auth.example.com/authorize"}, "must use https"),
        ({"token_endpoint": "http://auth.example.com/token"}, "must use https"),
        ({"registration_endpoint": "http://auth.example.com/register"}, "must use https"),
        ({"response_types_supported": ["token"]}, "no authorization code flow"),
    ],
)
def test_bad_metadata_is_refused(overrides: dict[str, Any], why: str) -> None:
    with pytest.raises(DiscoveryError, match=why) as caught:
        AuthServerMetadata.from_document(_document(**overrides), expected_issuer=ISSUER, url="https://m")
    assert "\n" not in str(caught.value)


def test_http_issuer_is_refused_unless_loopback() -> None:
    with pytest.raises(DiscoveryError, match="must use https"):
        AuthServerMetadata.from_document(
            _document(issuer="http://auth.example.com"), expected_issuer="http://auth.example.com", url="u"
        )
    loopback = "http://127.0.0.1:9000"
    doc = _document(
        issuer=loopback,
        authorization_endpoint=f"{loopback}/authorize",
        token_endpoint=f"{loopback}/token",
        registration_endpoint=f"{loopback}/register",
    )
    assert AuthServerMetadata.from_document(doc, expected_issuer=loopback, url="u").issuer == loopback


def test_s256_support() -> None:
    plain_only = AuthServerMetadata.from_document(
        _document(code_challenge_methods_supported=["plain"]), expected_issuer=ISSUER, url="u"
    )
    assert not plain_only.supports_s256
    unlisted = AuthServerMetadata.from_document(
        _document(code_challenge_methods_supported=None), expected_issuer=ISSUER, url="u"
    )
    assert unlisted.supports_s256


def _metadata(scopes: list[str] | None) -> AuthServerMetadata:
    document = _document(scopes_supported=scopes)
    return AuthServerMetadata.from_document(document, expected_issuer=ISSUER, url="u")


def _prm(scopes: tuple[str, ...] | None) -> ProtectedResourceMetadata:
    return ProtectedResourceMetadata("https://mcp.example.com/mcp", (ISSUER,), scopes, "u")


def test_scopes_user_choice_wins_and_offline_access_is_added() -> None:
    assert choose_scopes(["files"], None, _prm(("mcp",)), _metadata(["mcp", "offline_access"])) == (
        "files",
        "offline_access",
    )


def test_scopes_from_the_challenge_then_resource_then_server() -> None:
    metadata = _metadata(["a", "b", "offline_access"])
    challenge = BearerChallenge("Bearer", scope="read write")
    assert choose_scopes(None, challenge, _prm(("mcp",)), metadata) == ("read", "write", "offline_access")
    assert choose_scopes(None, None, _prm(("mcp",)), metadata) == ("mcp", "offline_access")
    assert choose_scopes(None, None, None, metadata) == ("a", "b", "offline_access")


def test_offline_access_only_when_listed_and_never_twice() -> None:
    assert choose_scopes(["mcp"], None, None, _metadata(["mcp"])) == ("mcp",)
    assert choose_scopes(["offline_access", "mcp"], None, None, _metadata(["mcp", "offline_access"])) == (
        "offline_access",
        "mcp",
    )
    assert choose_scopes(None, None, None, _metadata(None)) == ()


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("HTTPS://MCP.Example.com/mcp#frag", "https://mcp.example.com/mcp"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
        ("  https://a.example/x?y=1  ", "https://a.example/x?y=1"),
    ],
)
def test_server_url_normalisation(given: str, normal: str) -> None:
    assert normalize_server_url(given) == normal


@pytest.mark.parametrize("bad", ["mcp.example.com/mcp", "ftp://x/y", "https://", "http://h:99999/x", ""])
def test_server_url_must_be_http(bad: str) -> None:
    with pytest.raises(DiscoveryError):
        normalize_server_url(bad)
