"""The whole interactive login: discovery → client → browser (PKCE) → code exchange → store.

One entry point, :func:`perform_login`, shared by ``mcpkeeper login``, ``mcpkeeper run``
and the daemon path. It stores nothing until the very end, so a login that fails at any
step leaves the previous stored login (if any) exactly as it was.

The browser is opened with :mod:`webbrowser` (so ``$BROWSER`` is honoured) on a daemon
thread: ``webbrowser`` runs a ``$BROWSER`` command to completion, and a browser that
stays open must neither stall the callback server nor keep the process from exiting.
The URL is always handed to ``show_url`` as well, for headless machines and SSH; when the
browser there cannot reach our loopback callback, the URL it ended on can be pasted
(``pasted``) instead. ``challenge`` is a 401/403 the proxy met later (authorization that
appears after ``initialize``, or a step-up to more scopes): discovery starts from it.

Which client we are: a pre-registered one the user named, else a Client ID Metadata
Document (:mod:`.cimd`) when the user gave its URL and the server supports them, else the
registration stored from an earlier login, else a new dynamic registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import webbrowser
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx

from mcpkeeper.auth.callback import CallbackResult, CallbackServer
from mcpkeeper.auth.cimd import check_client_metadata_url, metadata_document_client
from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError, GrantKind, StoredLogin
from mcpkeeper.auth.discovery import AuthDiscovery, AuthServerMetadata, NoAuthRequired, discover
from mcpkeeper.auth.errors import TokenEndpointError
from mcpkeeper.auth.login_errors import CallbackError, LoginError, LoginTimeoutError
from mcpkeeper.auth.pkce import PkcePair, build_authorization_url, new_state
from mcpkeeper.auth.registration import ClientRegistration, register_client, require_s256, static_client
from mcpkeeper.auth.token import Token
from mcpkeeper.auth.token_client import ClientCredentials, TokenEndpoint
from mcpkeeper.auth.www_authenticate import BearerChallenge
from mcpkeeper.durations import format_duration

__all__ = [
    "DEFAULT_LOGIN_TIMEOUT",
    "LoginResult",
    "login_result",
    "open_in_browser",
    "perform_login",
    "previous_login",
    "token_endpoint",
    "token_errors",
]

_log = logging.getLogger(__name__)

DEFAULT_LOGIN_TIMEOUT = 300.0
#: One token request of a login (code exchange, device code poll, client credentials).
_TOKEN_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login did; safe to print (no token, no secret)."""

    name: str
    remote_url: str
    auth_required: bool
    issuer: str | None = None
    client_id: str | None = None
    registered_client: bool = False
    scopes: tuple[str, ...] = ()
    granted_scope: str | None = None
    expires_at: float | None = None
    has_refresh_token: bool = False
    warnings: tuple[str, ...] = ()
    login: StoredLogin | None = field(default=None, repr=False)


def open_in_browser(url: str) -> None:
    """Start the user's browser on ``url`` without waiting for it (see the module docstring)."""
    threading.Thread(target=webbrowser.open, args=(url,), name="open-browser", daemon=True).start()


def ignore_progress(_: str) -> None:
    """The default ``progress`` of every login: say nothing."""
    return None


@dataclass(frozen=True, slots=True)
class LoginStart:
    """What every kind of login begins with: the login stored under the name, and discovery."""

    found: AuthDiscovery
    previous: StoredLogin | None
    warnings: list[str]


def token_endpoint(
    found: AuthDiscovery, credentials: ClientCredentials, http: httpx.AsyncClient | None
) -> TokenEndpoint:
    """The token endpoint of the discovered authorization server, as every kind of login calls it."""
    return TokenEndpoint(
        found.metadata.token_endpoint, credentials, resource=found.resource, http=http, timeout=_TOKEN_TIMEOUT
    )


@contextlib.contextmanager
def token_errors(found: AuthDiscovery, refused: str) -> Iterator[None]:
    """A token request's failure as one :class:`LoginError`: ``refused: <the server's error>`` when
    the endpoint answered with an OAuth error, else that it could not be reached."""
    try:
        yield
    except TokenEndpointError as exc:
        raise LoginError(f"{refused}: {exc}") from None
    except httpx.HTTPError as exc:
        raise LoginError(
            f"cannot reach the token endpoint {found.metadata.token_endpoint}: {type(exc).__name__}"
        ) from None


async def start_login(
    remote_url: str,
    name: str,
    *,
    store: CredentialStore,
    scopes: Sequence[str] | None,
    issuer: str | None,
    http: httpx.AsyncClient | None,
    progress: Callable[[str], None],
    challenge: BearerChallenge | None = None,
) -> LoginStart | LoginResult:
    """The stored login (its scopes are the default) and discovery; a :class:`LoginResult`
    already when the remote needs no authentication. Raises :class:`LoginError`."""
    previous, warnings = previous_login(store, name, remote_url)
    progress(f"Discovering how {remote_url} authenticates…")
    found = await discover(
        remote_url,
        issuer=issuer,
        scopes=scopes or (previous.scopes if previous is not None else None),
        http=http,
        challenge=challenge,
    )
    if isinstance(found, NoAuthRequired):
        return LoginResult(name=name, remote_url=found.server_url, auth_required=False)
    return LoginStart(found, previous, warnings)


async def perform_login(
    remote_url: str,
    name: str,
    *,
    store: CredentialStore,
    callback_port: int | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    scopes: Sequence[str] | None = None,
    issuer: str | None = None,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    show_url: Callable[[str], None] = ignore_progress,
    progress: Callable[[str], None] = ignore_progress,
    open_browser: Callable[[str], None] | None = open_in_browser,
    http: httpx.AsyncClient | None = None,
    client_metadata_url: str | None = None,
    challenge: BearerChallenge | None = None,
    pasted: AsyncIterator[str] | None = None,
    resource: str | None = None,
    omit_resource: bool = False,
) -> LoginResult:
    """Log in to ``remote_url`` and store the result as workload ``name``.

    A login already stored under ``name`` for the same remote is the starting point: its
    client registration is reused (unless the server rejected it), and so are its scopes
    when ``scopes`` is not given. ``show_url`` receives the authorization URL (always),
    ``progress`` one-line step descriptions; ``open_browser`` None leaves opening the URL
    to the user; ``pasted`` yields URLs the user pastes when the browser cannot reach the
    callback. Raises :class:`LoginError` (one-line message) and stores nothing on failure.

    ``resource`` replaces the RFC 8707 resource indicator discovery found (mcp-remote's
    ``--resource``, one grant per tenant of a shared server); ``omit_resource`` sends none
    (for servers that refuse the parameter). Either way the stored login keeps it, so every
    refresh agrees with the authorization.
    """
    if client_metadata_url is not None:
        check_client_metadata_url(client_metadata_url)
    start = await start_login(
        remote_url,
        name,
        store=store,
        scopes=scopes,
        issuer=issuer,
        http=http,
        progress=progress,
        challenge=challenge,
    )
    if isinstance(start, LoginResult):
        return start
    found, previous, warnings = start.found, start.previous, start.warnings
    if resource is not None or omit_resource:
        found = replace(found, resource=resource or "")  # "": no resource parameter at all
    require_s256(found.metadata)
    document = _metadata_document(found, client_id, client_metadata_url)
    reusable = _reusable_client(previous, found, client_id, client_secret, document)
    wanted_port = callback_port or _registered_port(reusable)
    dynamic = client_id is None and document is None and (reusable is None or reusable.dynamic)
    async with CallbackServer(port=wanted_port, fallback=dynamic and callback_port is None) as callback:
        client, registered = await _client_for(
            found, callback.redirect_uri, reusable, client_id, client_secret, document, http, progress
        )
        state, pkce = new_state(), PkcePair.generate()
        url = build_authorization_url(
            found.metadata.authorization_endpoint,
            client_id=client.client_id,
            redirect_uri=callback.redirect_uri,
            state=state,
            pkce=pkce,
            scopes=found.scopes,
            resource=found.resource,
        )
        callback.expect(state)
        show_url(url)
        if open_browser is not None:
            open_browser(url)
        progress(f"Waiting for the login in the browser (up to {format_duration(timeout)})…")
        answer = await _wait_for_callback(callback, timeout, pasted, progress)
    _check_issuer(answer, found.metadata)
    progress("Exchanging the authorization code…")
    token = await _exchange(found, client, answer.code, callback.redirect_uri, pkce, http)
    return login_result(store, name, found, client, token, registered=registered, warnings=warnings)


def login_result(
    store: CredentialStore,
    name: str,
    found: AuthDiscovery,
    client: ClientRegistration,
    token: Token,
    *,
    registered: bool,
    warnings: list[str],
    grant: GrantKind = "authorization_code",
) -> LoginResult:
    """Store the new login as ``name`` and describe it (shared by every kind of login)."""
    login = StoredLogin(
        remote_url=found.server_url,
        issuer=found.metadata.issuer,
        authorization_endpoint=found.metadata.authorization_endpoint,
        token_endpoint=found.metadata.token_endpoint,
        client=client,
        resource=found.resource,
        scopes=found.scopes,
        token=token,
        grant=grant,
    )
    login = store.save(name, login)
    if not token.can_renew:
        warnings.append(_no_refresh_warning(found, token))
    return LoginResult(
        name=name,
        remote_url=found.server_url,
        auth_required=True,
        issuer=found.metadata.issuer,
        client_id=client.client_id,
        registered_client=registered,
        scopes=found.scopes,
        granted_scope=token.scope,
        expires_at=token.expires_at,
        has_refresh_token=token.refresh_token is not None,
        warnings=tuple(warnings),
        login=login,
    )


def previous_login(
    store: CredentialStore, name: str, remote_url: str
) -> tuple[StoredLogin | None, list[str]]:
    """The login stored as ``name``; None (and the reason as a warning) when unusable.

    A login for another remote under the same name is refused, never overwritten.
    """
    try:
        previous = store.load(name)
    except CredentialStoreError as exc:
        return None, [str(exc)]
    if previous is not None and not _same_remote(previous.remote_url, remote_url):
        raise LoginError(
            f"the name {name} already holds a login for {previous.remote_url}; "
            "choose another name with --name (or remove that workload first)"
        )
    return previous, []


def _same_remote(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme.lower(), pa.netloc.lower(), pa.path.rstrip("/"), pa.query) == (
        pb.scheme.lower(),
        pb.netloc.lower(),
        pb.path.rstrip("/"),
        pb.query,
    )


def _metadata_document(found: AuthDiscovery, client_id: str | None, url: str | None) -> str | None:
    """The client metadata URL to use as the client id: given, supported, and no client named instead."""
    if url is None or client_id is not None or not found.metadata.client_id_metadata_document_supported:
        return None
    return url


def _reusable_client(
    previous: StoredLogin | None,
    found: AuthDiscovery,
    client_id: str | None,
    client_secret: str | None,
    document: str | None,
) -> ClientRegistration | None:
    """The stored client when it still fits: same issuer, not rejected, not overridden.

    Credentials belong to the authorization server that issued them: a login stored for
    another issuer (the server moved to a new one) never lends its client to this one.
    """
    if previous is None or previous.registration_rejected or previous.issuer != found.metadata.issuer:
        return None
    if client_id is not None and (client_id, client_secret) != (
        previous.client.client_id,
        previous.client.client_secret,
    ):
        return None
    if document is not None and previous.client.client_id != document:
        return None
    return previous.client


def _registered_port(client: ClientRegistration | None) -> int | None:
    """The callback port of the stored registration, so that reusing it needs no new one."""
    if client is None or not client.redirect_uris:
        return None
    try:
        return urlsplit(client.redirect_uris[0]).port
    except ValueError:
        return None


async def _client_for(
    found: AuthDiscovery,
    redirect_uri: str,
    reusable: ClientRegistration | None,
    client_id: str | None,
    client_secret: str | None,
    document: str | None,
    http: httpx.AsyncClient | None,
    progress: Callable[[str], None],
) -> tuple[ClientRegistration, bool]:
    """(client, newly registered?) for this login's redirect URI."""
    if reusable is not None and reusable.accepts_redirect_uri(redirect_uri):
        return reusable, False
    if client_id is not None:
        # Remember the redirect URI used, so a re-login picks the same callback port.
        client = static_client(client_id, client_secret, found.metadata)
        return replace(client, redirect_uris=(redirect_uri,)), False
    if document is not None:
        progress(f"Using the client metadata document {document} as the client id…")
        return metadata_document_client(document), False
    if reusable is not None and not reusable.dynamic:
        return reusable, False
    progress(f"Registering mcpkeeper as a client of {found.metadata.issuer}…")
    client = await register_client(found.metadata, [redirect_uri], scopes=found.scopes, http=http)
    return client, True


async def _wait_for_callback(
    callback: CallbackServer,
    timeout: float,
    pasted: AsyncIterator[str] | None,
    progress: Callable[[str], None],
) -> CallbackResult:
    feeder = asyncio.create_task(_feed_pasted(callback, pasted, progress)) if pasted is not None else None
    try:
        async with asyncio.timeout(timeout):
            return await callback.wait()
    except TimeoutError:
        raise LoginTimeoutError(
            f"no login completed within {format_duration(timeout)}; run the command again and "
            "open the printed URL in a browser on this machine (or paste the URL it ends on, "
            "with --no-browser)"
        ) from None
    finally:
        if feeder is not None:
            feeder.cancel()
            await asyncio.wait({feeder})


async def _feed_pasted(
    callback: CallbackServer, pasted: AsyncIterator[str], progress: Callable[[str], None]
) -> None:
    """Hand each pasted line to the callback until one settles the login."""
    async for line in pasted:
        if not line.strip():
            continue
        problem = callback.submit(line)
        if problem is None:
            return
        progress(f"Ignored the pasted text: {problem}; paste the URL the browser ended on")


def _check_issuer(answer: CallbackResult, metadata: AuthServerMetadata) -> None:
    """RFC 9207: the callback must come from the server we sent the user to (mix-up defence).

    A simple string comparison, as RFC 9207 §2.4 demands: no trailing-slash or case
    normalisation, which would let a look-alike issuer through.
    """
    if answer.iss is not None and answer.iss != metadata.issuer:
        raise CallbackError(
            f"the login callback names issuer {answer.iss[:200]}, expected {metadata.issuer}; refusing it"
        )
    if answer.iss is None and metadata.authorization_response_iss_parameter_supported:
        raise CallbackError(f"the login callback lacks the iss parameter that {metadata.issuer} promises")


async def _exchange(
    found: AuthDiscovery,
    client: ClientRegistration,
    code: str,
    redirect_uri: str,
    pkce: PkcePair,
    http: httpx.AsyncClient | None,
) -> Token:
    endpoint = token_endpoint(found, client.credentials, http)
    with token_errors(found, "the token endpoint did not accept the authorization code"):
        return await endpoint.exchange_code(code, redirect_uri=redirect_uri, code_verifier=pkce.verifier)


def _no_refresh_warning(found: AuthDiscovery, token: Token) -> str:
    hint = (
        "even though offline_access was requested"
        if "offline_access" in found.scopes
        else "(the server does not list offline_access)"
    )
    return (
        f"the authorization server issued no refresh token {hint}: mcpkeeper cannot renew this login, "
        "so you will have to log in again when the access token expires"
    )
