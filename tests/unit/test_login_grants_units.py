"""The new logins' pure parts: client assertions, CIMD URLs, device polling, step-up needs,
renewable tokens in the monitor, the callback paste-back and the exact RFC 9207 comparison."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcpkeeper.auth import MonitoredTokenSource, Token
from mcpkeeper.auth.callback import CallbackServer
from mcpkeeper.auth.cimd import check_client_metadata_url, metadata_document_client
from mcpkeeper.auth.client_assertion import PrivateKeyError, PrivateKeyJwt, read_private_key
from mcpkeeper.auth.device import DeviceCode, poll_for_token
from mcpkeeper.auth.errors import TokenEndpointError
from mcpkeeper.auth.login_errors import (
    AuthorizationDeniedError,
    LoginError,
    LoginTimeoutError,
    RegistrationError,
)
from mcpkeeper.cli.paste import read_lines
from mcpkeeper.proxy.reauth import authorization_needed
from mcpkeeper.testing.clock import VirtualClock

from .monitor_fakes import FAST, RecordingSink, started

KEY = "-----BEGIN"


def _write(path: Path, key: object, mode: int = 0o600) -> Path:
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(mode)
    return path


# -- private_key_jwt ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    ],
)
def test_the_algorithm_follows_from_the_key(tmp_path: Path, key: object, algorithm: str) -> None:
    path = _write(tmp_path / "k.pem", key)
    assert read_private_key(path)[1] == algorithm
    assertion = PrivateKeyJwt("svc", path, "https://as.example.com/")()
    assert jwt.get_unverified_header(assertion)["alg"] == algorithm


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o666])
def test_a_key_others_may_read_is_refused_naming_the_fix(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "k.pem", ec.generate_private_key(ec.SECP256R1()), mode)
    with pytest.raises(PrivateKeyError) as refused:
        read_private_key(path)
    assert f"chmod 600 {path}" in str(refused.value) and KEY not in str(refused.value)


def test_unusable_key_files_are_one_line_errors_without_their_content(tmp_path: Path) -> None:
    weak = _write(tmp_path / "weak.pem", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    text = tmp_path / "text.pem"
    text.write_text("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")
    text.chmod(0o600)
    link = tmp_path / "link.pem"
    os.symlink(weak, link)
    for path, expected in (
        (weak, "at least 2048"),
        (text, "no unencrypted PEM private key"),
        (tmp_path / "missing.pem", "cannot open"),
        (link, "cannot open"),  # symlinks are not followed
        (tmp_path, "not a regular file"),
    ):
        with pytest.raises(PrivateKeyError) as refused:
            read_private_key(path)
        message = str(refused.value)
        assert expected in message and "\n" not in message and "not really" not in message
    assert issubclass(PrivateKeyError, LoginError)


def test_repr_of_the_signer_shows_no_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.pem", ec.generate_private_key(ec.SECP256R1()))
    assert KEY not in repr(PrivateKeyJwt("svc", path, "https://as.example.com"))


# -- Client ID Metadata Documents ---------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://app.example.com/client.json", "https://app.example.com/a/b?v=1", "http://127.0.0.1:8/c"]
)
def test_good_client_metadata_urls(url: str) -> None:
    client = metadata_document_client(url)
    assert client.client_id == url and client.metadata_document and client.auth_method == "none"
    assert client.client_secret is None and not client.dynamic


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://app.example.com", "needs a path"),
        ("https://app.example.com/", "needs a path"),
        ("http://app.example.com/client.json", "must use https"),
        ("https://app.example.com/c.json#frag", "no fragment"),
        ("https://user:pw@app.example.com/c.json", "no credentials"),
        ("ftp://app.example.com/c.json", "not an http(s) URL"),
    ],
)
def test_bad_client_metadata_urls(url: str, why: str) -> None:
    with pytest.raises(RegistrationError, match=why.replace("(", r"\(").replace(")", r"\)")):
        check_client_metadata_url(url)


# -- device polling -----------------------------------------------------------------------


class ScriptedDeviceEndpoint:
    """``TokenEndpoint.device_code`` answering from a script: error codes, "net", or "ok"."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.polls = 0

    async def device_code(self, device_code: str) -> Token:
        self.polls += 1
        step = self.script.pop(0)
        if step == "ok":
            return Token(access_token="device-at", refresh_token="device-rt")
        if step == "net":
            raise httpx.ConnectError("refused")
        raise TokenEndpointError(400, oauth_error=step)


def _code(interval: float = 5.0) -> DeviceCode:
    return DeviceCode("ABCD-EFGH", "https://as.example.com/device", None, 600.0, interval, "secret-dc")


async def _poll(endpoint: ScriptedDeviceEndpoint, *, timeout: float = 600.0) -> tuple[Token, list[float]]:
    clock = VirtualClock()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await clock.advance(seconds)

    token = await poll_for_token(endpoint, _code(), timeout=timeout, sleep=sleep, monotonic=clock.monotonic)  # type: ignore[arg-type]
    return token, waits


async def test_polling_waits_the_interval_and_slows_down_when_told() -> None:
    endpoint = ScriptedDeviceEndpoint(
        "authorization_pending", "slow_down", "authorization_pending", "net", "ok"
    )
    token, waits = await _poll(endpoint)
    assert token.access_token == "device-at"
    assert waits == [5.0, 5.0, 10.0, 10.0, 20.0]  # +5 on slow_down, doubled after a network failure


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("access_denied", AuthorizationDeniedError),
        ("expired_token", LoginTimeoutError),
        ("invalid_grant", LoginError),
    ],
)
async def test_polling_stops_on_the_servers_verdict(error: str, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        await _poll(ScriptedDeviceEndpoint("authorization_pending", error))


async def test_polling_never_goes_past_the_deadline() -> None:
    endpoint = ScriptedDeviceEndpoint(*["authorization_pending"] * 100)
    with pytest.raises(LoginTimeoutError):
        await _poll(endpoint, timeout=22.0)
    assert endpoint.polls == 4  # at 5, 10, 15, 20 s; the next would be past 22 s


# -- step-up needs ------------------------------------------------------------------------

STEP_UP = 'Bearer error="insufficient_scope", scope="mcp write", resource_metadata="https://x/.well-known/p"'


def test_which_answers_are_authorization_needs() -> None:
    sent = Token(access_token="at-1")
    later = authorization_needed(401, 'Bearer scope="mcp"', None, has_provider=False)
    assert later is not None and not later.step_up and later.scopes == ("mcp",) and later.sent is None
    step_up = authorization_needed(403, STEP_UP, sent, has_provider=True)
    assert step_up is not None and step_up.step_up and step_up.scopes == ("mcp", "write")
    assert step_up.sent is sent
    # A 401 to a token we hold is the refresh path's; a plain 403 is the server's answer.
    assert authorization_needed(401, "Bearer", sent, has_provider=True) is None
    assert authorization_needed(403, 'Bearer error="invalid_token"', sent, has_provider=True) is None
    assert authorization_needed(403, None, sent, has_provider=True) is None
    assert authorization_needed(403, "Basic realm=x", sent, has_provider=True) is None
    assert authorization_needed(500, STEP_UP, sent, has_provider=True) is None
    unreadable = authorization_needed(401, 'Bearer scope="unterminated', None, has_provider=False)
    assert unreadable is not None and unreadable.challenge is None  # still a need: discovery probes


# -- renewable tokens ---------------------------------------------------------------------


async def test_a_renewable_token_without_refresh_token_is_renewed_ahead_of_expiry() -> None:
    clock = VirtualClock()
    issued: list[Token] = []

    async def ask_again(token: Token, progress: object = None) -> Token:  # a client-credentials refresher
        fresh = Token(
            access_token=f"cc-{len(issued) + 2}",
            expires_at=clock.wall() + 3600,
            issued_at=clock.wall(),
            renewable=True,
        )
        issued.append(fresh)
        return fresh

    first = Token(access_token="cc-1", expires_at=clock.wall() + 3600, issued_at=clock.wall(), renewable=True)
    sink = RecordingSink()
    source = await started(
        MonitoredTokenSource(first, ask_again, sink, config=FAST, clock=clock, name="svc"), clock
    )
    await clock.advance(2699)
    assert issued == []
    await clock.run_until(lambda: len(issued) == 1, max_seconds=10)  # at 75 %, not at expiry
    assert (await source.token()).access_token == "cc-2" and sink.events == []
    await source.aclose()
    assert (
        Token.from_dict(first.to_dict()).renewable
        and not Token.from_dict({"access_token": "x1234567"}).renewable
    )


# -- paste-back ---------------------------------------------------------------------------


async def test_pasted_lines_are_read_without_blocking() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    lines = read_lines(read_fd)
    os.write(write_fd, b"first\nsec")
    assert await anext(lines) == "first"
    os.write(write_fd, b"ond\n")
    assert await anext(lines) == "second"
    os.close(write_fd)
    with pytest.raises(StopAsyncIteration):
        await anext(lines)
    os.close(read_fd)


async def test_a_pasted_callback_settles_only_its_own_login() -> None:
    async with CallbackServer() as callback:
        callback.expect("the-state")
        assert callback.submit("https://elsewhere.example/page?code=x&state=the-state") is not None
        assert "does not belong" in (callback.submit(f"{callback.redirect_uri}?code=c&state=other") or "")
        assert (
            callback.submit(f"  {callback.redirect_uri}?code=the-code&state=the-state&iss=https://as \n")
            is None
        )
        result = await asyncio.wait_for(callback.wait(), 5)
    assert result.code == "the-code" and result.iss == "https://as"
