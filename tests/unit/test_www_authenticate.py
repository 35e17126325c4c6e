"""The WWW-Authenticate parser: real-world challenge shapes and garbage."""

from __future__ import annotations

import pytest

from mcpkeeper.auth.login_errors import LoginError, WWWAuthenticateError
from mcpkeeper.auth.www_authenticate import Challenge, parse_challenges, parse_www_authenticate


def test_bearer_with_all_parameters() -> None:
    header = (
        'Bearer realm="mcp", '
        'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", '
        'scope="read write", error="invalid_token", error_description="The access token expired"'
    )
    challenge = parse_www_authenticate(header)
    assert challenge.scheme == "Bearer"
    assert challenge.realm == "mcp"
    assert challenge.resource_metadata == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    assert challenge.scope == "read write"
    assert challenge.error == "invalid_token"
    assert challenge.error_description == "The access token expired"


def test_bare_bearer_scheme() -> None:
    challenge = parse_www_authenticate("Bearer")
    assert challenge.scheme == "Bearer"
    assert challenge.resource_metadata is None and challenge.scope is None


def test_oauth_scheme_is_accepted_case_insensitively() -> None:
    challenge = parse_www_authenticate('oauth Resource_Metadata="https://a.example/prm"')
    assert challenge.scheme == "oauth"
    assert challenge.resource_metadata == "https://a.example/prm"


def test_unquoted_token_values_and_whitespace_around_equals() -> None:
    challenge = parse_www_authenticate("Bearer error = insufficient_scope ,scope=files.read")
    assert challenge.error == "insufficient_scope"
    assert challenge.scope == "files.read"


def test_escaped_quotes_and_commas_inside_quoted_strings() -> None:
    challenge = parse_www_authenticate(r'Bearer error_description="say \"hi\", then, go", realm="a,b"')
    assert challenge.error_description == 'say "hi", then, go'
    assert challenge.realm == "a,b"


def test_bearer_found_among_several_challenges() -> None:
    header = 'Basic realm="legacy", Negotiate, Bearer resource_metadata="https://x.example/prm", scope="a"'
    challenges = parse_challenges(header)
    assert [c.scheme for c in challenges] == ["Basic", "Negotiate", "Bearer"]
    assert challenges[0].params == {"realm": "legacy"}
    bearer = parse_www_authenticate(header)
    assert bearer.resource_metadata == "https://x.example/prm"
    assert bearer.scope == "a"


def test_token68_challenge() -> None:
    blob = "YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEFoQMCAQ6iBwMFACAAAACjggRqYYIEZjCCBGKgAwIBBaEQGw4="
    assert parse_challenges(f"Negotiate {blob}") == [Challenge("Negotiate", token68=blob)]
    assert parse_challenges("Basic, NTLM abc==") == [Challenge("Basic"), Challenge("NTLM", token68="abc==")]


def test_scheme_we_do_not_speak_is_a_clear_error() -> None:
    with pytest.raises(WWWAuthenticateError, match=r"Basic, Digest authentication; mcpkeeper speaks only"):
        parse_www_authenticate('Digest realm="x", nonce="abc", Basic realm="y"')


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("", "empty"),
        ("   ,  ", "empty"),
        ('Bearer realm="never closed', "unterminated quoted string"),
        ('Bearer scope="x", realm=', "missing value"),
        ("Bearer realm=a b", "expected ','"),
        ('Bearer realm="a", realm="b"', "given twice"),
        ("Bearer=oops", "expected a space"),
        ('"quoted-scheme"', "expected an auth scheme"),
        ("Bearer ==", "expected name=value"),
        ("\x00\x01garbage", "expected an auth scheme"),
    ],
)
def test_garbage_is_a_clear_one_line_error(header: str, why: str) -> None:
    with pytest.raises(WWWAuthenticateError) as caught:
        parse_www_authenticate(header)
    message = str(caught.value)
    assert why in message
    assert "\n" not in message
    assert isinstance(caught.value, LoginError)


def test_absurdly_long_header_is_refused_without_parsing() -> None:
    with pytest.raises(WWWAuthenticateError, match="over 8192 characters"):
        parse_www_authenticate("Bearer " + "a=b, " * 5000)
