"""A real OAuth 2.1 authorization server on loopback, for tests, benchmarks and the demo.

Everything a client of a real authorization server meets is here and checked the way a
strict server checks it: RFC 8414 metadata, RFC 7591 registration, an authorize endpoint
that demands ``state`` and PKCE S256 (and approves without a browser), a token endpoint
that rotates refresh tokens and rejects a spent one with ``invalid_grant``, RFC 8707
``resource`` binding and RFC 7662 introspection.

It also speaks what headless users and services need: the device authorization grant
(RFC 8628: ``/device_authorization``, and ``/device?user_code=…`` as the page where the
user approves), the client credentials grant (secret or ``private_key_jwt``), and Client
ID Metadata Documents (a URL as ``client_id``: the document is fetched and its redirect
URIs trusted). ``public_url`` makes it speak for another origin (an MCP server that hosts
its own authorization server, the 2025-03-26 way), ``publish_metadata=False`` leaves the
2025-03-26 default endpoints as the only way in.

What a real server does *not* offer is the fault switch: ``await auth.set_fault(...)``
makes the token endpoint fail the way WAFs, overloaded servers and dead networks fail,
while counters record every request so a test can assert how a client behaved.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive

from mcpkeeper.auth.clock import Clock, SystemClock
from mcpkeeper.testing._grants import (
    AUTH_METHODS,
    DEVICE_CODE_GRANT,
    PUBLIC,
    GrantError,
    GrantStore,
    RegisteredClient,
    SpentRefreshTokenError,
)
from mcpkeeper.testing._serve import ServedApp
from mcpkeeper.testing.counters import TokenCounters
from mcpkeeper.testing.faults import FaultMode, FaultSettings, UnparsableBody, fault_response

__all__ = ["AuthorizeMode", "FixtureAuthServer"]

AuthorizeMode = Literal["approve", "deny"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT)
_CIMD_MAX_BYTES = 64 * 1024


class _Endpoint:
    """A read-only attribute of :class:`FixtureAuthServer`: its :attr:`~FixtureAuthServer.url`
    and this path (so the endpoints follow a ``public_url`` like the issuer does)."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __get__(self, server: FixtureAuthServer, owner: type[FixtureAuthServer] | None = None) -> str:
        return f"{server.url}{self._path}"


class FixtureAuthServer:
    """``async with FixtureAuthServer(access_token_lifetime=60) as auth:`` serves on 127.0.0.1.

    ``access_token_lifetime``, ``authorize_mode``, ``refresh_reuse_grace`` and the fault
    (:meth:`set_fault`) can all be changed while the server runs. ``refresh_reuse_grace``
    (off: strict rotation) keeps a spent refresh token usable until the token it was
    rotated to has been used, as real servers' reuse intervals do; such uses are counted in
    ``counters.grace_reuse``. ``clock`` (a :class:`mcpkeeper.auth.clock.Clock`)
    decides token expiry and request timestamps, so a virtual clock can expire tokens
    without waiting.
    """

    def __init__(
        self,
        *,
        access_token_lifetime: float = 3600.0,
        port: int = 0,
        scopes: Sequence[str] = ("mcp", "offline_access"),
        default_scope: str = "mcp",
        issue_refresh_tokens: bool = True,
        refresh_reuse_grace: bool = False,
        clock: Clock | None = None,
        device_interval: int = 1,
        publish_metadata: bool = True,
        offer_revocation: bool = True,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self.store = GrantStore(
            wall=self._clock.wall,
            scopes=scopes,
            default_scope=default_scope,
            refresh_reuse_grace=refresh_reuse_grace,
            on_grace_reuse=self._count_grace_reuse,
        )
        self.access_token_lifetime = access_token_lifetime
        self.issue_refresh_tokens = issue_refresh_tokens
        self.authorize_mode = "approve"
        self.counters = TokenCounters()
        #: Poll interval (seconds) announced with device codes (RFC 8628 says 5 by default).
        self.device_interval = device_interval
        self.publish_metadata = publish_metadata
        #: Whether the metadata names the RFC 7009 revocation endpoint (it answers either way).
        self.offer_revocation = offer_revocation
        #: Every revocation request: the hint sent and what was revoked (None: unknown token).
        self.revocations: list[dict[str, str | None]] = []
        #: The origin the server speaks for (issuer, endpoints), when it is not its own.
        self.public_url: str | None = None
        #: Every registration request body, as received (tests check what clients declare).
        self.registrations: list[dict[str, Any]] = []
        #: Client ID Metadata Documents fetched, by URL.
        self.cimd_fetches: list[str] = []
        self._fault = FaultSettings()
        self._release_hung = asyncio.Event()
        self._closing = False
        self._entered = False
        self._app = self._build_app()
        self._served = ServedApp(self._app, port=port, lifespan="off")

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FixtureAuthServer:
        self._closing = False
        self._entered = True
        await self._served.start_listening()
        if self._fault.mode is FaultMode.REFUSED:
            await self._served.stop_listening()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        self._entered = False
        self._wake_hung_requests()
        await self._served.stop_listening()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._served.port

    @property
    def url(self) -> str:
        """Base URL, no trailing slash; also the issuer (``public_url`` when set)."""
        return self.public_url or self._served.url

    @property
    def own_url(self) -> str:
        """Where this server itself listens (differs from :attr:`url` under a ``public_url``)."""
        return self._served.url

    @property
    def app(self) -> Starlette:
        """The ASGI app, for an MCP server that serves these endpoints at its own origin."""
        return self._app

    @property
    def issuer(self) -> str:
        return self.url

    authorization_endpoint = _Endpoint("/authorize")
    token_endpoint = _Endpoint("/token")
    registration_endpoint = _Endpoint("/register")
    introspection_endpoint = _Endpoint("/introspect")
    revocation_endpoint = _Endpoint("/revoke")
    device_authorization_endpoint = _Endpoint("/device_authorization")

    @property
    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 authorization server metadata document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "registration_endpoint": self.registration_endpoint,
            "introspection_endpoint": self.introspection_endpoint,
            "scopes_supported": list(self.store.scopes),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(_GRANT_TYPES),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "device_authorization_endpoint": self.device_authorization_endpoint,
            "client_id_metadata_document_supported": True,
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
            **(
                {
                    "revocation_endpoint": self.revocation_endpoint,
                    "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
                }
                if self.offer_revocation
                else {}
            ),
        }

    # -- run-time switches -----------------------------------------------------------------

    @property
    def fault(self) -> FaultMode:
        return self._fault.mode

    async def set_fault(
        self, mode: FaultMode | str, *, retry_after: int | None = 30, body: UnparsableBody = "html"
    ) -> None:
        """Switch how the token endpoint answers from now on.

        ``retry_after`` applies to ``rate_limited_429`` (``None`` omits the header); ``body``
        ("html" or "json") to ``unparsable_200``. Requests held by ``hang`` are released
        with a bare 503 and never processed (no refresh token is spent). ``refused``
        closes the listener; any other mode re-binds the same port.
        """
        settings = FaultSettings(FaultMode(mode), retry_after=retry_after, body=body)
        if settings.body not in ("html", "json"):
            raise ValueError(f"unknown unparsable_200 body {body!r}")
        self._fault = settings
        self._wake_hung_requests()
        if settings.mode is FaultMode.REFUSED:
            await self._served.stop_listening()
        elif self._entered and not self._served.listening:
            await self._served.start_listening()

    @property
    def access_token_lifetime(self) -> float:
        return self._lifetime

    @access_token_lifetime.setter
    def access_token_lifetime(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError("access_token_lifetime must be positive")
        self._lifetime = float(seconds)

    @property
    def authorize_mode(self) -> AuthorizeMode:
        return self._authorize_mode

    @authorize_mode.setter
    def authorize_mode(self, mode: AuthorizeMode) -> None:
        if mode not in ("approve", "deny"):
            raise ValueError(f"authorize_mode must be 'approve' or 'deny', not {mode!r}")
        self._authorize_mode = mode

    @property
    def refresh_reuse_grace(self) -> bool:
        return self.store.refresh_reuse_grace

    @refresh_reuse_grace.setter
    def refresh_reuse_grace(self, enabled: bool) -> None:
        self.store.refresh_reuse_grace = enabled

    def reset_counters(self) -> None:
        self.counters.reset()

    def _count_grace_reuse(self) -> None:
        self.counters.grace_reuse += 1

    # -- helpers for tests -----------------------------------------------------------------

    def register_client(
        self,
        redirect_uris: Sequence[str] = (),
        *,
        token_endpoint_auth_method: str = PUBLIC,
        client_id: str | None = None,
        client_name: str | None = None,
        scope: str | None = None,
        public_key_pem: str | None = None,
    ) -> RegisteredClient:
        """Register a client without HTTP (client_secret_* get a secret; private_key_jwt needs a key)."""
        return self.store.register(
            redirect_uris,
            token_endpoint_auth_method=token_endpoint_auth_method,
            client_id=client_id,
            client_name=client_name,
            scope=scope,
            public_key_pem=public_key_pem,
        )

    def approve_device(self, user_code: str, *, approve: bool = True) -> bool:
        """The user entered ``user_code`` on the approval page (False: unknown or already decided)."""
        return self.store.decide_device(user_code, approve=approve)

    def mint(self, client_id: str, scope: str | None = None, resource: str | None = None) -> dict[str, Any]:
        """A token response (access + refresh) as if a login had just completed.

        An unknown ``client_id`` is registered on the spot as a public client, so the
        refresh token works against ``/token`` with just that ``client_id``.
        """
        if client_id not in self.store.clients:
            self.store.register(client_id=client_id)
        return self.store.issue_tokens(
            client_id,
            self.store.check_scope(scope),
            resource,
            lifetime=self._lifetime,
            issue_refresh=self.issue_refresh_tokens,
        )

    def verify_access_token(self, token: str) -> dict[str, Any] | None:
        """RFC 7662-style claims of a live access token, or ``None`` (unknown, expired, revoked)."""
        return self.store.verify_access(token)

    def revoke_access_token(self, token: str) -> bool:
        return self.store.revoke_access(token)

    def revoke_all_access_tokens(self) -> int:
        return self.store.revoke_all_access()

    def revoke_refresh_token(self, token: str) -> bool:
        return self.store.revoke_refresh(token)

    # -- HTTP ------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", self._metadata, methods=["GET"]),
                Route("/.well-known/openid-configuration", self._metadata, methods=["GET"]),
                Route("/register", self._register, methods=["POST"]),
                Route("/authorize", self._authorize, methods=["GET"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/token", self._token_get, methods=["GET"]),
                Route("/introspect", self._introspect, methods=["POST"]),
                Route("/revoke", self._revoke, methods=["POST"]),
                Route("/device_authorization", self._device_authorization, methods=["POST"]),
                Route("/device", self._device_page, methods=["GET"]),
            ]
        )

    async def _metadata(self, request: Request) -> Response:
        if not self.publish_metadata:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(self.metadata)

    async def _register(self, request: Request) -> Response:
        try:
            data = await request.json()
        except ValueError:
            return _oauth_error(GrantError("invalid_client_metadata", "body must be JSON"))
        if not isinstance(data, dict):
            return _oauth_error(GrantError("invalid_client_metadata", "body must be a JSON object"))
        self.registrations.append(data)
        try:
            _check_subset(data.get("grant_types"), _GRANT_TYPES, "grant_types")
            _check_subset(data.get("response_types"), ("code",), "response_types")
            grants = data.get("grant_types") or ["authorization_code"]
            client = self.store.register(
                _redirect_uris(data.get("redirect_uris"), needed="authorization_code" in grants),
                # RFC 7591 §2: when omitted, the method is client_secret_basic.
                token_endpoint_auth_method=_string(data, "token_endpoint_auth_method")
                or "client_secret_basic",
                client_name=_string(data, "client_name"),
                scope=_string(data, "scope"),
                grant_types=grants,
                application_type=_string(data, "application_type"),
            )
        except GrantError as exc:
            return _oauth_error(exc)
        return JSONResponse(client.to_dict(), status_code=201, headers=_NO_STORE)

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        client = self.store.clients.get(params.get("client_id", ""))
        if client is None and params.get("client_id", "").startswith(("https://", "http://")):
            try:
                client = await self._metadata_document_client(params["client_id"])
            except GrantError as exc:
                return _oauth_error(exc)
        if client is None:
            return _oauth_error(GrantError("invalid_request", "unknown client_id"))
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri is None or not client.accepts_redirect_uri(redirect_uri):
            # Never redirect to an unregistered URI (RFC 6749 §4.1.2.1): answer here.
            return _oauth_error(GrantError("invalid_request", "redirect_uri is not registered"))
        state = params.get("state")
        try:
            code = self._approve(client, redirect_uri, params)
        except GrantError as exc:
            return self._redirect(redirect_uri, exc.to_dict(), state)
        return self._redirect(redirect_uri, {"code": code}, state)

    async def _metadata_document_client(self, url: str) -> RegisteredClient:
        """A Client ID Metadata Document client: fetch the document, check it names itself, trust it."""
        self.cimd_fetches.append(url)
        try:
            async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as http:
                answer = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError:
            raise GrantError("invalid_client", "the client metadata document cannot be fetched") from None
        if answer.status_code != 200 or len(answer.content) > _CIMD_MAX_BYTES:
            raise GrantError("invalid_client", "the client metadata document cannot be fetched")
        try:
            document = answer.json()
        except ValueError:
            raise GrantError("invalid_client", "the client metadata document is not JSON") from None
        if not isinstance(document, dict) or document.get("client_id") != url:
            raise GrantError("invalid_client", "the client metadata document does not name itself")
        uris = document.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            raise GrantError("invalid_client", "the client metadata document lists no redirect_uris")
        return self.store.register(uris, client_id=url, client_name=_string(document, "client_name"))

    async def _device_authorization(self, request: Request) -> Response:
        form = await request.form()
        try:
            client_id, client_secret = _client_credentials(form, request.headers.get("authorization"))
            client = self.store.authenticate(client_id, client_secret)
            if DEVICE_CODE_GRANT not in client.grant_types:
                raise GrantError("unauthorized_client", "the client is not registered for the device grant")
            scope = self.store.check_scope(_form_str(form, "scope"))
            grant = self.store.start_device_authorization(
                client, scope, _resource(_form_str(form, "resource"))
            )
        except GrantError as exc:
            return _oauth_error(exc)
        page = f"{self.url}/device"
        body = {
            "device_code": grant.device_code,
            "user_code": grant.user_code,
            "verification_uri": page,
            "verification_uri_complete": f"{page}?{urlencode({'user_code': grant.user_code})}",
            "expires_in": int(grant.expires_at - self._clock.wall()),
            "interval": self.device_interval,
        }
        return JSONResponse(body, headers=_NO_STORE)

    async def _device_page(self, request: Request) -> Response:
        """The page a user opens with the code: approves at once (or denies, in ``deny`` mode)."""
        code = request.query_params.get("user_code", "")
        if not self.store.decide_device(code, approve=self.authorize_mode == "approve"):
            return PlainTextResponse("unknown or used code", status_code=400)
        return PlainTextResponse("done; return to your terminal")

    def _approve(self, client: RegisteredClient, redirect_uri: str, params: Mapping[str, str]) -> str:
        if params.get("response_type") != "code":
            raise GrantError("unsupported_response_type", "only response_type=code is supported")
        if not params.get("state"):
            raise GrantError("invalid_request", "state is required")
        challenge = params.get("code_challenge")
        if not challenge:
            raise GrantError("invalid_request", "code_challenge is required (PKCE)")
        if params.get("code_challenge_method") != "S256":
            raise GrantError("invalid_request", "code_challenge_method must be S256")
        scope = self.store.check_scope(params.get("scope"))
        resource = _resource(params.get("resource"))
        if self.authorize_mode == "deny":
            raise GrantError("access_denied", "the user denied the request")
        return self.store.issue_code(client.client_id, redirect_uri, challenge, scope, resource)

    def _redirect(self, redirect_uri: str, params: dict[str, str], state: str | None) -> Response:
        if state:
            params["state"] = state
        params["iss"] = self.issuer  # RFC 9207: lets the client detect mix-up attacks
        parts = urlsplit(redirect_uri)
        query = urlencode([*parse_qsl(parts.query), *params.items()])
        return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        grant_type = str(form.get("grant_type") or "missing")[:64]
        self.counters.record_request(grant_type, self._fault.mode.value, self._clock.wall())
        settings = self._fault
        if settings.mode is FaultMode.HANG:
            await self._hold(request.receive)
            # Never processed, even when released: its client has usually given up, and a
            # grant spent for a vanished client would be a refresh token silently lost.
            self.counters.record_outcome(FaultMode.HANG.value)
            return PlainTextResponse("Service Unavailable", status_code=503)
        if settings.mode is FaultMode.REFUSED:  # arrived just before the listener closed
            self.counters.record_outcome(FaultMode.REFUSED.value)
            return PlainTextResponse("Service Unavailable", status_code=503)
        canned = fault_response(settings, _form_str(form, "refresh_token"))
        if canned is not None:
            self.counters.record_outcome(settings.mode.value)
            return canned
        try:
            body = self._grant(grant_type, form, request.headers.get("authorization"))
        except GrantError as exc:
            if isinstance(exc, SpentRefreshTokenError):
                self.counters.spent_token_reuse += 1
            self.counters.record_outcome(exc.error)
            headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else None
            return _oauth_error(exc, headers=headers)
        self.counters.record_outcome("ok")
        return JSONResponse(body, headers=_NO_STORE)

    async def _token_get(self, request: Request) -> Response:
        """A GET of the token endpoint, as a client's reachability probe sends it.

        An outage in front of the server (a WAF, a dead backend, a rate limiter, a hang)
        answers every method alike, so the fault applies here too; otherwise the answer is
        what a real token endpoint gives a GET: 405. Not counted as a token request.
        """
        mode = self._fault.mode
        if mode is FaultMode.HANG:
            await self._hold(request.receive)
            return PlainTextResponse("Service Unavailable", status_code=503)
        if mode in (FaultMode.WAF_HTML_403, FaultMode.SERVER_ERROR_500, FaultMode.RATE_LIMITED_429):
            canned = fault_response(self._fault)
            assert canned is not None
            return canned
        return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "POST"})

    def _authenticate(
        self, form: FormData, client_id: str | None, client_secret: str | None
    ) -> RegisteredClient:
        """The client of a token or revocation request (secret, or a ``private_key_jwt`` assertion)."""
        return self.store.authenticate(
            client_id,
            client_secret,
            assertion=_form_str(form, "client_assertion"),
            assertion_type=_form_str(form, "client_assertion_type"),
            audience=self.issuer,
        )

    def _grant(self, grant_type: str, form: FormData, authorization: str | None) -> dict[str, Any]:
        client_id, client_secret = _client_credentials(form, authorization)
        if grant_type == "missing":
            raise GrantError("invalid_request", "grant_type is required")
        if grant_type not in _GRANT_TYPES:
            raise GrantError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        client = self._authenticate(form, client_id, client_secret)
        resource = _resource(_form_str(form, "resource"))
        if grant_type == "client_credentials":
            return self.store.client_credentials(
                client, _form_str(form, "scope"), resource, lifetime=self._lifetime
            )
        if grant_type == DEVICE_CODE_GRANT:
            return self.store.redeem_device_code(
                client,
                _form_str(form, "device_code"),
                lifetime=self._lifetime,
                issue_refresh=self.issue_refresh_tokens,
            )
        if grant_type == "authorization_code":
            return self.store.redeem_code(
                client,
                _form_str(form, "code"),
                redirect_uri=_form_str(form, "redirect_uri"),
                code_verifier=_form_str(form, "code_verifier"),
                resource=resource,
                lifetime=self._lifetime,
                issue_refresh=self.issue_refresh_tokens,
            )
        return self.store.rotate_refresh(
            client,
            _form_str(form, "refresh_token"),
            scope=_form_str(form, "scope"),
            resource=resource,
            lifetime=self._lifetime,
        )

    async def _revoke(self, request: Request) -> Response:
        """RFC 7009 token revocation: the client authenticates as at the token endpoint."""
        form = await request.form()
        hint = _form_str(form, "token_type_hint")
        try:
            client_id, client_secret = _client_credentials(form, request.headers.get("authorization"))
            client = self._authenticate(form, client_id, client_secret)
            token = _form_str(form, "token")
            if not token:
                raise GrantError("invalid_request", "token is required")
            revoked = self.store.revoke_for_client(client, token)
        except GrantError as exc:
            self.revocations.append({"hint": hint, "revoked": None, "error": exc.error})
            headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else None
            return _oauth_error(exc, headers=headers)
        self.revocations.append({"hint": hint, "revoked": revoked, "error": None})
        return PlainTextResponse("", headers=_NO_STORE)

    async def _introspect(self, request: Request) -> Response:
        form = await request.form()
        claims = self.verify_access_token(_form_str(form, "token") or "")
        return JSONResponse(claims if claims is not None else {"active": False}, headers=_NO_STORE)

    # -- hang ------------------------------------------------------------------------------

    def _wake_hung_requests(self) -> None:
        self._release_hung.set()
        self._release_hung = asyncio.Event()

    async def _hold(self, receive: Receive) -> None:
        """Wait until the fault changes, the server closes, or the client hangs up."""
        released = asyncio.ensure_future(self._release_hung.wait())
        gone = asyncio.ensure_future(_client_gone(receive))
        try:
            await asyncio.wait({released, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (released, gone):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _oauth_error(exc: GrantError, *, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers={**_NO_STORE, **(headers or {})})


def _form_str(form: FormData, key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) else None


def _string(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise GrantError("invalid_client_metadata", f"{key} must be a string")
    return value


def _redirect_uris(value: object, *, needed: bool = True) -> list[str]:
    if value is None and not needed:
        return []
    if not isinstance(value, list) or (needed and not value):
        raise GrantError("invalid_redirect_uri", "redirect_uris must be a non-empty array")
    return value


def _check_subset(value: object, allowed: Sequence[str], name: str) -> None:
    if value is None:
        return
    if not isinstance(value, list) or any(item not in allowed for item in value):
        raise GrantError("invalid_client_metadata", f"{name} must be a subset of {list(allowed)}")


def _resource(value: str | None) -> str | None:
    """An RFC 8707 resource indicator: an absolute URI without a fragment."""
    if value is None:
        return None
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc or parts.fragment:
        raise GrantError("invalid_target", "resource must be an absolute URI without a fragment")
    return value


def _client_credentials(form: FormData, authorization: str | None) -> tuple[str | None, str | None]:
    """(client_id, client_secret) from HTTP Basic (RFC 6749 §2.3.1) or the form body."""
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise GrantError("invalid_client", "malformed Basic credentials", status=401) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise GrantError("invalid_client", "malformed Basic credentials", status=401)
        return unquote(client_id), unquote(secret)
    return _form_str(form, "client_id"), _form_str(form, "client_secret")
