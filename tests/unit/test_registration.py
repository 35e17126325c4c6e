"""Client registration: the stored form, static clients, S256, and the stale-registration reason."""

from __future__ import annotations

from typing import Any

import pytest

from mcpkeeper.auth.discovery import AuthServerMetadata
from mcpkeeper.auth.errors import Failure, FailureKind, TokenEndpointError, classify
from mcpkeeper.auth.login_errors import RegistrationError
from mcpkeeper.auth.registration import (
    ClientRegistration,
    is_registration_rejected,
    register_client,
    rejected_registration_reason,
    require_s256,
    static_client,
)

ISSUER = "https://auth.example.com"


def _metadata(**overrides: Any) -> AuthServerMetadata:
    doc: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "code_challenge_methods_supported": ["S256"],
    }
    doc.update(overrides)
    return AuthServerMetadata.from_document(
        {k: v for k, v in doc.items() if v is not None}, expected_issuer=ISSUER, url="u"
    )


def test_registration_round_trips_and_hides_the_secret() -> None:
    reg = ClientRegistration(
        "cid",
        "s3cr3t-value",
        "client_secret_post",
        f"{ISSUER}/register",
        ("http://127.0.0.1:5/callback",),
        dynamic=True,
    )
    assert ClientRegistration.from_dict(reg.to_dict()) == reg
    assert "s3cr3t-value" not in repr(reg)
    assert "s3cr3t-value" not in repr(reg.credentials)


def test_registration_from_dict_needs_a_client_id() -> None:
    with pytest.raises(ValueError, match="client_id"):
        ClientRegistration.from_dict({"client_secret": "x"})


def test_dynamic_registration_accepts_only_its_registered_redirects() -> None:
    reg = ClientRegistration("cid", redirect_uris=("http://127.0.0.1:5000/callback",), dynamic=True)
    assert reg.accepts_redirect_uri("http://127.0.0.1:5000/callback")
    assert not reg.accepts_redirect_uri("http://127.0.0.1:5001/callback")
    static = ClientRegistration("cid")
    assert static.accepts_redirect_uri("http://127.0.0.1:5001/callback")


@pytest.mark.parametrize(
    ("secret", "supported", "method"),
    [
        (None, None, "none"),
        ("s", None, "client_secret_basic"),
        ("s", ["client_secret_basic", "client_secret_post"], "client_secret_basic"),
        ("s", ["client_secret_post"], "client_secret_post"),
        ("s", ["private_key_jwt"], "client_secret_basic"),
    ],
)
def test_static_client_auth_method(secret: str | None, supported: list[str] | None, method: str) -> None:
    client = static_client("cid", secret, _metadata(token_endpoint_auth_methods_supported=supported))
    assert client.auth_method == method
    assert not client.dynamic


def test_s256_required() -> None:
    require_s256(_metadata())
    require_s256(_metadata(code_challenge_methods_supported=None))
    with pytest.raises(RegistrationError, match=r"does not support PKCE S256 \(it lists: plain\)"):
        require_s256(_metadata(code_challenge_methods_supported=["plain"]))


async def test_registration_refused_without_s256_before_any_request() -> None:
    metadata = _metadata(
        code_challenge_methods_supported=["plain"], registration_endpoint=f"{ISSUER}/register"
    )
    with pytest.raises(RegistrationError, match="S256"):
        await register_client(metadata, ["http://127.0.0.1:1/callback"])


async def test_registration_needs_an_endpoint() -> None:
    with pytest.raises(RegistrationError, match="pass --client-id"):
        await register_client(_metadata(), ["http://127.0.0.1:1/callback"])


def test_rejected_registration_reason_names_the_cure() -> None:
    failure = classify(TokenEndpointError(401, oauth_error="invalid_client", description="unknown client"))
    assert is_registration_rejected(failure)
    reason = rejected_registration_reason("notes", failure)
    assert reason is not None
    assert "invalid_client" in reason and "stale" in reason and "`mcpkeeper login notes`" in reason
    static = rejected_registration_reason("notes", failure, dynamic=False)
    assert static is not None and "--client-id" in static


@pytest.mark.parametrize(
    "failure",
    [
        classify(TokenEndpointError(400, oauth_error="invalid_grant")),
        classify(TokenEndpointError(503)),
        Failure(FailureKind.TRANSIENT, "x", oauth_error="invalid_client"),
    ],
)
def test_other_failures_are_not_a_rejected_registration(failure: Failure) -> None:
    assert not is_registration_rejected(failure)
    assert rejected_registration_reason("notes", failure) is None


def test_unauthorized_client_is_a_rejected_registration() -> None:
    assert is_registration_rejected(classify(TokenEndpointError(400, oauth_error="unauthorized_client")))
