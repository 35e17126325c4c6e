"""From an MCP server URL to everything a login needs (MCP authorization spec, RFC 9728, RFC 8414).

The chain: probe the server for a ``401`` with ``WWW-Authenticate`` (a plain GET, then an
MCP ``initialize`` POST), read its protected-resource metadata (the URL from the header,
else the RFC 9728 well-known URIs, path-specific first), pick the issuer (configured →
``authorization_servers`` → the server's own origin), fetch the authorization server's
metadata (RFC 8414 path insertion, then OpenID Connect, then bare RFC 8414) and check
that it names the issuer we asked for.

A server that answers ``initialize`` without asking for credentials is asked for its
tools as well, since some servers let the handshake through and want a token only for
what follows (the MCP "step-up" pattern); only a server that answers both needs no login:
:func:`discover` returns :class:`NoAuthRequired` and the proxy sends no token. "Answers"
means a JSON-RPC response or an event stream: a web site that answers every POST with
its home page is not an MCP server, however 200 its status. A challenge the proxy met
later (a 401 or 403 on some request) can be handed in instead of probing.

A server that publishes no protected-resource metadata is treated as the 2025-03-26
revision says: its authorization server lives at its own origin, so the metadata is
looked up there (its ``issuer`` may then be any URL of that same origin), and when there
is none, the endpoints are the defaults ``/authorize``, ``/token`` and ``/register`` there.

Everything here treats the documents as untrusted (see :mod:`mcpkeeper.auth.netpolicy`
and :mod:`mcpkeeper.auth.http_fetch`) and fails with a one-line :class:`DiscoveryError`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from mcpkeeper.auth.http_fetch import HttpAnswer, json_object, request_capped
from mcpkeeper.auth.json_fields import optional_text
from mcpkeeper.auth.login_errors import DiscoveryError
from mcpkeeper.auth.netpolicy import TargetPolicy, require_secure_endpoint, same_origin
from mcpkeeper.auth.www_authenticate import BearerChallenge, parse_www_authenticate

__all__ = [
    "AuthDiscovery",
    "AuthServerMetadata",
    "NoAuthRequired",
    "ProtectedResourceMetadata",
    "authorization_server_metadata_urls",
    "choose_scopes",
    "discover",
    "fetch_authorization_server_metadata",
    "normalize_server_url",
    "protected_resource_metadata_urls",
]

_DEFAULT_TIMEOUT = 15.0
_PROBE_PROTOCOL_VERSION = "2025-06-18"
_JSON = "application/json"
_EVENT_STREAM = "text/event-stream"
_ACCEPT_MCP = f"{_JSON}, {_EVENT_STREAM}"
_ACCEPT_JSON = _JSON
_OFFLINE_ACCESS = "offline_access"


@dataclass(frozen=True, slots=True)
class AuthServerMetadata:
    """The RFC 8414 fields a login uses, validated."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None = None
    scopes_supported: tuple[str, ...] | None = None
    code_challenge_methods_supported: tuple[str, ...] | None = None
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    grant_types_supported: tuple[str, ...] | None = None
    authorization_response_iss_parameter_supported: bool = False
    client_id_metadata_document_supported: bool = False
    device_authorization_endpoint: str | None = None
    #: RFC 7009 token revocation (``mcpkeeper logout``), when the server offers it.
    revocation_endpoint: str | None = None
    url: str = ""

    @property
    def supports_s256(self) -> bool:
        """S256 is listed, or nothing is listed (then we send it anyway and see)."""
        methods = self.code_challenge_methods_supported
        return methods is None or "S256" in methods

    @classmethod
    def from_document(cls, data: dict[str, Any], *, expected_issuer: str, url: str) -> AuthServerMetadata:
        """Validate a metadata document: issuer match (RFC 8414 §3.3), required endpoints, HTTPS."""
        issuer = data.get("issuer")
        if not isinstance(issuer, str) or not issuer:
            raise DiscoveryError(f"authorization server metadata at {url} has no issuer")
        if not _same_issuer(issuer, expected_issuer):
            raise DiscoveryError(
                f"authorization server metadata at {url} names issuer {issuer}, "
                f"expected {expected_issuer}; refusing it (RFC 8414 §3.3)"
            )
        endpoints: dict[str, str] = {}
        for key in ("authorization_endpoint", "token_endpoint"):
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise DiscoveryError(f"authorization server metadata at {url} has no {key}")
            endpoints[key] = value
        registration = optional_text(data, "registration_endpoint")
        device = optional_text(data, "device_authorization_endpoint")
        revocation = optional_text(data, "revocation_endpoint")
        require_secure_endpoint(issuer, "issuer")
        require_secure_endpoint(endpoints["authorization_endpoint"], "authorization endpoint")
        require_secure_endpoint(endpoints["token_endpoint"], "token endpoint")
        if registration is not None:
            require_secure_endpoint(registration, "registration endpoint")
        if device is not None:
            require_secure_endpoint(device, "device authorization endpoint")
        if revocation is not None:
            require_secure_endpoint(revocation, "revocation endpoint")
        response_types = _strings(data.get("response_types_supported"))
        if response_types is not None and "code" not in response_types:
            raise DiscoveryError(f"the authorization server {issuer} offers no authorization code flow")
        return cls(
            issuer=issuer,
            authorization_endpoint=endpoints["authorization_endpoint"],
            token_endpoint=endpoints["token_endpoint"],
            registration_endpoint=registration,
            scopes_supported=_strings(data.get("scopes_supported")),
            code_challenge_methods_supported=_strings(data.get("code_challenge_methods_supported")),
            token_endpoint_auth_methods_supported=_strings(data.get("token_endpoint_auth_methods_supported")),
            grant_types_supported=_strings(data.get("grant_types_supported")),
            authorization_response_iss_parameter_supported=data.get(
                "authorization_response_iss_parameter_supported"
            )
            is True,
            client_id_metadata_document_supported=data.get("client_id_metadata_document_supported") is True,
            device_authorization_endpoint=device,
            revocation_endpoint=revocation,
            url=url,
        )

    @classmethod
    def defaults_at(cls, origin: str) -> AuthServerMetadata:
        """The 2025-03-26 default endpoints of an authorization server without metadata."""
        require_secure_endpoint(origin, "issuer")
        return cls(
            issuer=origin,
            authorization_endpoint=f"{origin}/authorize",
            token_endpoint=f"{origin}/token",
            registration_endpoint=f"{origin}/register",
            url="",
        )


@dataclass(frozen=True, slots=True)
class ProtectedResourceMetadata:
    """RFC 9728 metadata of the MCP server."""

    resource: str | None
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] | None
    url: str


@dataclass(frozen=True, slots=True)
class AuthDiscovery:
    """The server needs OAuth; everything needed to log in to it."""

    server_url: str
    resource: str
    issuer: str
    metadata: AuthServerMetadata
    scopes: tuple[str, ...]
    challenge: BearerChallenge | None = None
    resource_metadata: ProtectedResourceMetadata | None = None

    @property
    def auth_required(self) -> bool:
        return True

    @property
    def offers_offline_access(self) -> bool:
        return _OFFLINE_ACCESS in (self.metadata.scopes_supported or ())


@dataclass(frozen=True, slots=True)
class NoAuthRequired:
    """The server answered ``initialize`` without credentials: proxy it with no token."""

    server_url: str

    @property
    def auth_required(self) -> bool:
        return False


async def discover(
    server_url: str,
    *,
    issuer: str | None = None,
    scopes: Sequence[str] | None = None,
    http: httpx.AsyncClient | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
    challenge: BearerChallenge | None = None,
) -> AuthDiscovery | NoAuthRequired:
    """Find out whether and how ``server_url`` wants us to log in.

    ``issuer`` overrides the server's choice of authorization server; ``scopes`` the
    scopes (otherwise taken from the challenge or the metadata, plus ``offline_access``
    when the authorization server lists it). ``challenge`` is one the server already
    sent (to the proxy): the server is not probed again, and auth is required.
    """
    server_url = normalize_server_url(server_url)
    if http is None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout)) as client:
            return await _discover(client, server_url, issuer, scopes, challenge)
    return await _discover(http, server_url, issuer, scopes, challenge)


def normalize_server_url(url: str) -> str:
    """The URL without fragment, with a lower-case scheme and host; refuses non-http(s)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise DiscoveryError(f"not an http(s) URL: {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise DiscoveryError(f"bad port in URL: {url!r}") from None
    return urlunsplit((scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))


async def _discover(
    http: httpx.AsyncClient,
    server_url: str,
    issuer: str | None,
    scopes: Sequence[str] | None,
    challenge: BearerChallenge | None,
) -> AuthDiscovery | NoAuthRequired:
    policy = await TargetPolicy.for_remote(server_url)
    if challenge is not None:
        probe = _Probe(challenge, True, False, "the server asked for authorization")
    else:
        probe = await _probe(http, server_url)
    if probe.not_mcp is not None and issuer is None:
        raise DiscoveryError(f"{server_url} is not an MCP server: {probe.not_mcp}")
    if probe.no_auth and issuer is None:
        return NoAuthRequired(server_url)
    prm = await _find_protected_resource_metadata(http, server_url, probe.challenge, policy)
    if not (probe.saw_401 or prm is not None or issuer is not None):
        raise DiscoveryError(
            f"{server_url} does not look like an MCP server ({probe.summary}) "
            "and publishes no OAuth protected resource metadata"
        )
    if prm is None and issuer is None:
        metadata = await _metadata_at_origin(http, server_url)
    else:
        chosen_issuer = _choose_issuer(issuer, prm, server_url)
        if issuer is None:  # the user's own choice is trusted; the server's is checked
            await policy.check(chosen_issuer, "authorization server")
        metadata = await fetch_authorization_server_metadata(chosen_issuer, http=http)
    for endpoint, what in (
        (metadata.authorization_endpoint, "authorization endpoint"),
        (metadata.token_endpoint, "token endpoint"),
        (metadata.registration_endpoint, "registration endpoint"),
        (metadata.device_authorization_endpoint, "device authorization endpoint"),
    ):
        if endpoint is not None:
            await policy.check(endpoint, what)
    resource = prm.resource if prm is not None and prm.resource else server_url
    return AuthDiscovery(
        server_url=server_url,
        resource=resource,
        issuer=metadata.issuer,
        metadata=metadata,
        scopes=choose_scopes(scopes, probe.challenge, prm, metadata),
        challenge=probe.challenge,
        resource_metadata=prm,
    )


@dataclass(frozen=True, slots=True)
class _Probe:
    challenge: BearerChallenge | None
    saw_401: bool
    no_auth: bool
    summary: str
    #: Why a 2xx answer to ``initialize`` is not an MCP server's answer.
    not_mcp: str | None = None


async def _probe(http: httpx.AsyncClient, server_url: str) -> _Probe:
    """GET, then ``initialize``: the first 401 with a challenge wins; an MCP answer to it means no auth."""
    seen: list[str] = []
    saw_401 = False
    get = await request_capped(
        http, "GET", server_url, what="the MCP server", headers={"Accept": _ACCEPT_MCP}, read_body=False
    )
    seen.append(f"GET answered HTTP {get.status_code}")
    challenge = _challenge_of(get)
    saw_401 = get.status_code == 401
    if challenge is not None:
        return _Probe(challenge, True, False, "; ".join(seen))
    init = await request_capped(
        http,
        "POST",
        server_url,
        what="the MCP server",
        headers={"Accept": _ACCEPT_MCP, "Content-Type": "application/json"},
        json_body=_initialize_request(),
        read_body=lambda media_type: media_type == _JSON,  # never an event stream: it may not end
    )
    seen.append(f"initialize answered HTTP {init.status_code}")
    challenge = _challenge_of(init)
    saw_401 = saw_401 or init.status_code == 401
    answered = 200 <= init.status_code < 300 and not saw_401
    not_mcp = _not_an_mcp_answer(init) if answered else None
    no_auth = answered and not_mcp is None
    if no_auth:
        try:
            later = await _probe_after_initialize(http, server_url, init)
        finally:
            await _end_probe_session(http, server_url, init)
        if later is not None:
            seen.append(f"tools/list answered HTTP {later.status_code}")
            return _Probe(_challenge_of(later), later.status_code == 401, False, "; ".join(seen))
    return _Probe(challenge, saw_401, no_auth, "; ".join(seen), not_mcp)


async def _probe_after_initialize(
    http: httpx.AsyncClient, server_url: str, init: HttpAnswer
) -> HttpAnswer | None:
    """``tools/list`` in the probe's session: the answer when it is a challenge (401/403), else None.

    A server may let ``initialize`` (and notifications) through and ask for a token only
    for real work; its challenge then names the scope to ask for. Anything else it says
    (an error, a stream) is not our business: the server is usable without a token so far.
    """
    headers = {"Accept": _ACCEPT_MCP, "Content-Type": "application/json"}
    session = init.headers.get("mcp-session-id")
    if session:
        headers["mcp-session-id"] = session
    headers["mcp-protocol-version"] = _negotiated_version(init)
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await request_capped(
        http,
        "POST",
        server_url,
        what="the MCP server",
        headers=headers,
        json_body=notification,
        read_body=False,
    )
    listing = await request_capped(
        http,
        "POST",
        server_url,
        what="the MCP server",
        headers=headers,
        json_body={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
        read_body=False,
    )
    if listing.status_code in (401, 403) and _challenge_of(listing) is not None:
        return listing
    return None


def _negotiated_version(init: HttpAnswer) -> str:
    """The protocol version the server chose (a JSON answer says it), else the one we offered."""
    if init.content_type == _JSON:
        with contextlib.suppress(ValueError, UnicodeDecodeError, KeyError, TypeError):
            version = json.loads(init.body)["result"]["protocolVersion"]
            if isinstance(version, str) and version.isprintable() and len(version) < 32:
                return version
    return _PROBE_PROTOCOL_VERSION


def _not_an_mcp_answer(init: HttpAnswer) -> str | None:
    """Why a 2xx answer to ``initialize`` is no MCP server's: not an event stream, nor a JSON-RPC response."""
    if init.content_type == _EVENT_STREAM:
        return None
    answered = f"initialize answered HTTP {init.status_code}"
    if init.content_type != _JSON:
        return f"{answered} {init.content_type or 'without a content type'}, not a JSON-RPC response"
    try:
        data = json.loads(init.body)
    except (ValueError, UnicodeDecodeError):
        return f"{answered} with invalid JSON"
    if isinstance(data, dict) and data.get("jsonrpc") == "2.0" and ("result" in data or "error" in data):
        return None
    return f"{answered} with JSON that is not a JSON-RPC response"


def _challenge_of(answer: HttpAnswer) -> BearerChallenge | None:
    if answer.status_code not in (401, 403):
        return None
    headers = answer.headers.get_list("www-authenticate")
    if not headers:
        return None
    return parse_www_authenticate(", ".join(headers))


def _initialize_request() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": _PROBE_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcpkeeper-discovery", "version": "1"},
        },
    }


async def _end_probe_session(http: httpx.AsyncClient, server_url: str, init: HttpAnswer) -> None:
    """Close the session our probe opened on a stateful server; failure is harmless."""
    session = init.headers.get("mcp-session-id")
    if not session:
        return
    with contextlib.suppress(httpx.HTTPError):
        await http.delete(server_url, headers={"mcp-session-id": session})


async def _find_protected_resource_metadata(
    http: httpx.AsyncClient,
    server_url: str,
    challenge: BearerChallenge | None,
    policy: TargetPolicy,
) -> ProtectedResourceMetadata | None:
    """The first usable RFC 9728 document, or None when the server publishes none."""
    candidates = protected_resource_metadata_urls(server_url)
    if challenge is not None and challenge.resource_metadata:
        named = challenge.resource_metadata
        if not same_origin(named, server_url):
            require_secure_endpoint(named, "resource metadata URL")
        await policy.check(named, "resource metadata URL")
        candidates = [named, *[c for c in candidates if c != named]]
    problems: list[str] = []
    for url in candidates:
        answer = await request_capped(
            http, "GET", url, what="protected resource metadata", headers={"Accept": _ACCEPT_JSON}
        )
        if answer.status_code != 200:
            continue
        try:
            data = json_object(answer, "protected resource metadata")
        except DiscoveryError as exc:
            problems.append(str(exc))
            continue
        return _protected_resource_metadata(data, url=answer.url, server_url=server_url)
    if problems:
        raise DiscoveryError(problems[0])
    return None


def _protected_resource_metadata(
    data: dict[str, Any], *, url: str, server_url: str
) -> ProtectedResourceMetadata:
    resource = optional_text(data, "resource")
    if resource is not None and not _resource_covers(resource, server_url):
        raise DiscoveryError(
            f"protected resource metadata at {url} is for {resource}, not for {server_url}; refusing it"
        )
    servers = _strings(data.get("authorization_servers")) or ()
    return ProtectedResourceMetadata(resource, servers, _strings(data.get("scopes_supported")), url)


def _resource_covers(resource: str, server_url: str) -> bool:
    """RFC 9728 §3.3, relaxed as MCP clients do: same origin and a path prefix of the server's."""
    if not same_origin(resource, server_url):
        return False
    resource_path = urlsplit(resource).path.rstrip("/")
    server_path = urlsplit(server_url).path.rstrip("/")
    return server_path == resource_path or server_path.startswith(resource_path + "/")


def protected_resource_metadata_urls(server_url: str) -> list[str]:
    """RFC 9728 §3.1 well-known URIs for the server: path-specific first, then the root."""
    parts = urlsplit(server_url)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [f"{base}/.well-known/oauth-protected-resource{path}"] if path else []
    urls.append(f"{base}/.well-known/oauth-protected-resource")
    return urls


def _choose_issuer(configured: str | None, prm: ProtectedResourceMetadata | None, server_url: str) -> str:
    if configured:
        return configured
    if prm is not None and prm.authorization_servers:
        return prm.authorization_servers[0]
    parts = urlsplit(server_url)
    return f"{parts.scheme}://{parts.netloc}"


async def _metadata_at_origin(http: httpx.AsyncClient, server_url: str) -> AuthServerMetadata:
    """2025-03-26 discovery: metadata at the MCP server's origin, else the default endpoints.

    The document comes from the MCP server's own origin, so an ``issuer`` on that origin
    (``https://mcp.example.com/oauth``) is the server's word about itself and is accepted;
    an issuer on another origin is refused as usual.
    """
    parts = urlsplit(server_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    require_secure_endpoint(origin, "issuer")
    problems: list[str] = []
    urls = authorization_server_metadata_urls(origin)
    document = await _first_metadata_document(http, urls, problems, skip_unreachable=False)
    if document is not None:
        data, url = document
        named = data.get("issuer")
        expected = named if isinstance(named, str) and named and same_origin(named, origin) else origin
        return AuthServerMetadata.from_document(data, expected_issuer=expected, url=url)
    if problems:
        raise DiscoveryError(problems[0])
    return AuthServerMetadata.defaults_at(origin)


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Where RFC 8414 and OpenID Connect Discovery put the metadata of ``issuer``, in order."""
    parts = urlsplit(issuer)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [
        f"{base}/.well-known/oauth-authorization-server{path}",
        f"{base}/.well-known/openid-configuration{path}",
    ]
    if path:
        urls.append(f"{base}{path}/.well-known/openid-configuration")
    urls.append(f"{base}/.well-known/oauth-authorization-server")
    return list(dict.fromkeys(urls))


async def fetch_authorization_server_metadata(issuer: str, *, http: httpx.AsyncClient) -> AuthServerMetadata:
    """Fetch and validate the metadata of ``issuer``; the first usable candidate wins.

    A candidate that is absent (4xx) or unusable (HTML, not JSON, too large) is skipped so
    that servers answering unknown paths with an app page still work; when no candidate
    works the most telling problem is reported. A document for another issuer, or one
    without the required endpoints, is an error at once: it is the server's own answer.
    """
    require_secure_endpoint(issuer, "issuer")
    problems: list[str] = []
    urls = authorization_server_metadata_urls(issuer)
    document = await _first_metadata_document(http, urls, problems, skip_unreachable=True)
    if document is not None:
        data, url = document
        return AuthServerMetadata.from_document(data, expected_issuer=issuer, url=url)
    if problems:
        raise DiscoveryError(problems[0])
    tried = ", ".join(urls)
    raise DiscoveryError(f"no OAuth authorization server metadata found for {issuer} (tried {tried})")


async def _first_metadata_document(
    http: httpx.AsyncClient, urls: Sequence[str], problems: list[str], *, skip_unreachable: bool
) -> tuple[dict[str, Any], str] | None:
    """The first candidate answering 200 with a JSON object, and its URL after redirects.

    An absent candidate (4xx) is skipped silently; a 5xx or an unusable answer (HTML, not
    JSON, too large) is skipped and added to ``problems``. A request that fails outright is
    skipped the same way with ``skip_unreachable``, else raised.
    """
    for url in urls:
        try:
            answer = await request_capped(
                http, "GET", url, what="authorization server metadata", headers={"Accept": _ACCEPT_JSON}
            )
        except DiscoveryError as exc:
            if not skip_unreachable:
                raise
            problems.append(str(exc))
            continue
        if answer.status_code != 200:
            if answer.status_code >= 500:
                problems.append(f"authorization server metadata at {url} answered {answer.status_code}")
            continue
        try:
            return json_object(answer, "authorization server metadata"), answer.url
        except DiscoveryError as exc:
            problems.append(str(exc))
    return None


def choose_scopes(
    user_scopes: Sequence[str] | None,
    challenge: BearerChallenge | None,
    prm: ProtectedResourceMetadata | None,
    metadata: AuthServerMetadata,
) -> tuple[str, ...]:
    """The user's scopes, else the challenge's, else the resource's, else the AS's; plus offline_access.

    ``offline_access`` is what many authorization servers want before they issue a refresh
    token, and without a refresh token every expiry costs the user a browser login.
    """
    if user_scopes:
        chosen = list(user_scopes)
    elif challenge is not None and challenge.scope:
        chosen = challenge.scope.split()
    elif prm is not None and prm.scopes_supported:
        chosen = list(prm.scopes_supported)
    else:
        chosen = list(metadata.scopes_supported or ())
    if _OFFLINE_ACCESS in (metadata.scopes_supported or ()) and _OFFLINE_ACCESS not in chosen:
        chosen.append(_OFFLINE_ACCESS)
    return tuple(dict.fromkeys(chosen))


def _same_issuer(found: str, expected: str) -> bool:
    return found.rstrip("/") == expected.rstrip("/")


def _strings(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(item for item in value if isinstance(item, str))
