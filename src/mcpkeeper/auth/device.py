"""Headless login: the OAuth device authorization grant (RFC 8628).

Where no browser can reach a loopback callback (SSH sessions, containers, a server in a
rack), the authorization server gives a short *user code* and a URL; the user opens the
URL on any device (their phone, their laptop), enters the code and approves, while we
poll the token endpoint until the approval arrives. Nothing listens locally.

Polling follows RFC 8628 §3.5 exactly: wait ``interval`` seconds (5 by default) between
requests, add 5 seconds on ``slow_down``, keep going on ``authorization_pending``, stop on
``access_denied`` or ``expired_token``, double the interval after a network failure, and
never poll past the code's expiry or the login timeout. The text the server sends for
the user (URL, code) is shown through :func:`mcpkeeper.sanitize.server_text`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
from mcpkeeper.auth.discovery import AuthDiscovery
from mcpkeeper.auth.errors import TokenEndpointError
from mcpkeeper.auth.http_fetch import HttpAnswer, json_object
from mcpkeeper.auth.login import (
    DEFAULT_LOGIN_TIMEOUT,
    LoginResult,
    ignore_progress,
    login_result,
    start_login,
    token_endpoint,
)
from mcpkeeper.auth.login_errors import AuthorizationDeniedError, LoginError, LoginTimeoutError
from mcpkeeper.auth.netpolicy import require_secure_endpoint
from mcpkeeper.auth.registration import ClientRegistration, register_client, static_client
from mcpkeeper.auth.token import Token
from mcpkeeper.auth.token_client import DEVICE_CODE_GRANT, TokenEndpoint
from mcpkeeper.durations import format_duration
from mcpkeeper.sanitize import server_text

__all__ = ["DeviceCode", "perform_device_login", "poll_for_token", "request_device_code"]

_DEFAULT_INTERVAL = 5.0
_SLOW_DOWN_STEP = 5.0  # RFC 8628 §3.5
_MAX_INTERVAL = 60.0
_TIMEOUT = 30.0
_MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """The device authorization response (RFC 8628 §3.2); ``device_code`` is a secret."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float
    device_code: str

    def __repr__(self) -> str:
        return f"DeviceCode(user_code={self.user_code!r}, verification_uri={self.verification_uri!r})"


def _show_nothing(_: DeviceCode) -> None:
    return None


async def perform_device_login(
    remote_url: str,
    name: str,
    *,
    store: CredentialStore,
    client_id: str | None = None,
    client_secret: str | None = None,
    scopes: Sequence[str] | None = None,
    issuer: str | None = None,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    show_code: Callable[[DeviceCode], None] = _show_nothing,
    progress: Callable[[str], None] = ignore_progress,
    http: httpx.AsyncClient | None = None,
) -> LoginResult:
    """Log in with a user code entered elsewhere; store the result as workload ``name``."""
    start = await start_login(
        remote_url, name, store=store, scopes=scopes, issuer=issuer, http=http, progress=progress
    )
    if isinstance(start, LoginResult):
        return start
    found, previous, warnings = start.found, start.previous, start.warnings
    endpoint = found.metadata.device_authorization_endpoint
    if endpoint is None:
        raise LoginError(
            f"the authorization server {found.metadata.issuer} does not offer the device authorization "
            "grant; log in without --device (with --no-browser you can paste the URL the browser ends on)"
        )
    client, registered = await _device_client(found, previous, client_id, client_secret, http, progress)
    tokens = token_endpoint(found, client.credentials_for(found.metadata.issuer), http)
    code = await request_device_code(endpoint, client, found, http)
    show_code(code)
    wait = min(timeout, code.expires_in)
    progress(f"Waiting for the code to be entered (up to {format_duration(wait)})…")
    token = await poll_for_token(tokens, code, timeout=wait)
    return login_result(
        store, name, found, client, token, registered=registered, warnings=warnings, grant="device_code"
    )


async def _device_client(
    found: AuthDiscovery,
    previous: StoredLogin | None,
    client_id: str | None,
    client_secret: str | None,
    http: httpx.AsyncClient | None,
    progress: Callable[[str], None],
) -> tuple[ClientRegistration, bool]:
    """The user's client, or one registered for this grant (a browser-flow registration may lack it)."""
    if client_id is not None:
        return static_client(client_id, client_secret, found.metadata), False
    if (
        previous is not None
        and not previous.registration_rejected
        and previous.issuer == found.metadata.issuer
        and (not previous.client.dynamic or not previous.client.redirect_uris)
    ):
        return previous.client, False
    progress(f"Registering mcpkeeper as a client of {found.metadata.issuer}…")
    client = await register_client(
        found.metadata, [], scopes=found.scopes, grant_types=(DEVICE_CODE_GRANT, "refresh_token"), http=http
    )
    return client, True


async def request_device_code(
    endpoint: str, client: ClientRegistration, found: AuthDiscovery, http: httpx.AsyncClient | None
) -> DeviceCode:
    """Ask ``endpoint`` for a device code and a user code (RFC 8628 §3.1)."""
    require_secure_endpoint(endpoint, "device authorization endpoint")
    form = {"client_id": client.client_id}
    if found.scopes:
        form["scope"] = " ".join(found.scopes)
    form["resource"] = found.resource
    auth = None
    if client.auth_method == "client_secret_basic" and client.client_secret is not None:
        auth = httpx.BasicAuth(client.client_id, client.client_secret)
    elif client.auth_method == "client_secret_post" and client.client_secret is not None:
        form["client_secret"] = client.client_secret
    try:
        if http is None:
            async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False) as own:
                response = await _post_capped(own, endpoint, form, auth)
        else:
            response = await _post_capped(http, endpoint, form, auth)
    except httpx.HTTPError as exc:
        raise LoginError(
            f"cannot reach the device authorization endpoint {endpoint}: {type(exc).__name__}"
        ) from None
    if response.status_code != 200:
        refusal = TokenEndpointError.from_response(response)
        raise LoginError(f"the device authorization endpoint refused: {refusal}")
    return _device_code(response, endpoint)


async def _post_capped(
    http: httpx.AsyncClient, endpoint: str, form: dict[str, str], auth: httpx.Auth | None
) -> httpx.Response:
    """POST the form; the answer's body is read up to :data:`_MAX_BODY` bytes (it is a few hundred)."""
    request = http.build_request("POST", endpoint, data=form, headers={"Accept": "application/json"})
    response = await http.send(request, auth=auth or httpx.USE_CLIENT_DEFAULT, stream=True)
    try:
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _MAX_BODY:
                raise LoginError(f"the device authorization response from {endpoint} is too large")
    finally:
        await response.aclose()
    # Only the media type is kept: the body is already decoded (no Content-Encoding any more).
    kept = {"content-type": response.headers.get("content-type", "")}
    return httpx.Response(response.status_code, headers=kept, content=body, request=request)


def _device_code(response: httpx.Response, endpoint: str) -> DeviceCode:
    answer = HttpAnswer(endpoint, response.status_code, response.headers, response.content)
    data = json_object(answer, "the device authorization response", error=LoginError)
    fields: dict[str, str] = {}
    for key in ("device_code", "user_code", "verification_uri"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise LoginError(f"the device authorization response from {endpoint} has no {key}")
        fields[key] = value
    complete = data.get("verification_uri_complete")
    return DeviceCode(
        user_code=server_text(fields["user_code"], limit=64),
        verification_uri=server_text(fields["verification_uri"], limit=512),
        verification_uri_complete=server_text(complete, limit=1024) if isinstance(complete, str) else None,
        expires_in=_seconds(data.get("expires_in"), default=600.0),
        interval=min(_MAX_INTERVAL, max(1.0, _seconds(data.get("interval"), default=_DEFAULT_INTERVAL))),
        device_code=fields["device_code"],
    )


def _seconds(value: object, *, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


async def poll_for_token(
    tokens: TokenEndpoint,
    code: DeviceCode,
    *,
    timeout: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Token:
    """Poll until the user approves (RFC 8628 §3.4-3.5), within ``timeout`` seconds."""
    deadline = monotonic() + timeout
    interval = code.interval
    while True:
        if monotonic() + interval > deadline:
            raise LoginTimeoutError(
                f"nobody entered the code within {format_duration(timeout)}; run the login again"
            )
        await sleep(interval)
        try:
            return await tokens.device_code(code.device_code)
        except httpx.HTTPError:
            interval = min(_MAX_INTERVAL, interval * 2)  # RFC 8628 §3.5: back off on a timeout
            continue
        except TokenEndpointError as exc:
            error = exc.oauth_error
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval = min(_MAX_INTERVAL, interval + _SLOW_DOWN_STEP)
                continue
            if error == "access_denied":
                raise AuthorizationDeniedError("the login was refused on the authorization page") from None
            if error == "expired_token":
                raise LoginTimeoutError(
                    "the code expired before it was entered; run the login again"
                ) from None
            raise LoginError(f"the token endpoint refused the device code: {exc}") from None
