"""The reverse proxy in front of one remote MCP server, injecting the workload's token.

URL mapping: the local URL keeps the remote's path and query. A request to
``http://127.0.0.1:PORT/<path>?<query>`` goes to ``<upstream origin>/<path>?<query>``; the
path of ``upstream_url`` itself is not prepended (it only tells the user which local URL
to hand to clients: :func:`local_url_for`). So ``/mcp`` locally is ``/mcp`` remotely, and
the older HTTP+SSE transport's ``/sse`` + ``/messages/`` pair works unchanged. When the app
is mounted under a prefix (ASGI ``root_path``), the prefix is removed before forwarding.

Per request (the hot path, so plain ASGI and no framework):

1. read the body: kept when small enough to replay (:mod:`._body`), else streamed up;
2. ``await provider.token()``; a :class:`TokenUnavailableError` becomes ``503`` with
   ``Retry-After`` (:mod:`._replies`), never ``401``;
3. forward with the client's end-to-end headers, the client's ``Authorization`` replaced by
   ours (:mod:`._headers`), redirects *not* followed, so the token never leaves the
   upstream origin (architecture.md §7);
4. on ``401``: ``force_refresh(the token we sent)`` once and replay once if the body is
   replayable; a 401 to the replay goes back to the monitor, which ends the grant when a
   token from a forced refresh is refused again (``unauthenticated``, 503 with the login
   hint) instead of refreshing once per client request. A ``401`` without a login, or a
   ``403 insufficient_scope`` (step-up), goes to the :class:`~.reauth.Reauthorizer`
   instead, when there is one (:meth:`ProxyApp._reauthorize`);
5. stream the response down as it arrives (SSE included), rewriting upstream-origin URLs in
   ``Location`` and in the legacy ``endpoint`` event to the local origin (:mod:`._rewrite`).

Requests a web page could have sent (a ``Host`` or ``Origin`` that is not loopback: DNS
rebinding, cross-origin) are refused with 403 (:mod:`._guard`), since the proxy would
otherwise lend them the user's token; so are requests without the client token when the
workload requires one, and TRACE/CONNECT are never forwarded. A client that disconnects cancels the upstream
request, also while a stream idles.
Tokens are never logged: log lines carry the method, the path and the status only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import anyio
from starlette.types import Receive, Scope, Send

from mcpkeeper.auth.errors import TokenUnavailableError
from mcpkeeper.auth.protocols import TokenProvider
from mcpkeeper.auth.token import Token
from mcpkeeper.proxy._body import DEFAULT_REPLAY_LIMIT, ClientDisconnected, RequestBody, read_request_body
from mcpkeeper.proxy._disconnect import DisconnectWatch
from mcpkeeper.proxy._guard import request_refusal
from mcpkeeper.proxy._headers import RawHeaders, downstream_headers, header_value, upstream_headers
from mcpkeeper.proxy._replies import LocalReply, reply_for_token_error
from mcpkeeper.proxy._rewrite import Origin, UrlRewriter, rewrite_endpoint_event
from mcpkeeper.proxy._upstream import (
    Upstream,
    UpstreamBroken,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnreachable,
    create_upstream_client,
    open_upstream,
)
from mcpkeeper.proxy.observer import NO_PROXY_OBSERVER, ProxyObserver
from mcpkeeper.proxy.reauth import (
    AuthorizationNeeded,
    AuthorizationRefused,
    Reauthorizer,
    authorization_needed,
)

__all__ = ["ProxyApp", "Upstream", "create_proxy_app", "create_upstream_client", "local_url_for"]

log = logging.getLogger(__name__)


def local_url_for(upstream_url: str, local_origin: str) -> str:
    """The URL clients use locally for ``upstream_url``: the local origin, the remote path and query."""
    remote = urlsplit(upstream_url)
    local = urlsplit(local_origin)
    return urlunsplit((local.scheme, local.netloc, remote.path or "/", remote.query, ""))


def create_proxy_app(
    upstream_url: str,
    provider: TokenProvider | None,
    *,
    upstream: Upstream | None = None,
    name: str = "",
    replay_limit: int = DEFAULT_REPLAY_LIMIT,
    client_token: str | None = None,
    reauthorizer: Reauthorizer | None = None,
    behind_gateway: bool = False,
    observer: ProxyObserver = NO_PROXY_OBSERVER,
) -> ProxyApp:
    """An ASGI app forwarding every request to ``upstream_url``'s origin with a fresh token.

    ``provider=None`` forwards without a token (a server that needs none). ``name`` is the
    workload's, used in messages ("run `mcpkeeper login NAME`") and log lines.

    Without ``upstream`` (the usual case) the app opens its own connections to the
    upstream's origin (:func:`~._upstream.open_upstream`: environment proxies honoured) and
    closes them on ASGI lifespan shutdown or :meth:`ProxyApp.aclose`. An ``upstream`` passed
    in (e.g. :func:`~._upstream.http_upstream` over an httpx client) is used as it is and
    left to the caller to close.

    ``client_token`` set: every request must carry ``Authorization: Bearer <client_token>``
    (refused with 403 otherwise); it is replaced by the upstream token like any client
    ``Authorization``. ``reauthorizer`` handles authorization the upstream asks for later
    (:mod:`.reauth`). ``behind_gateway``: the app is mounted under the gateway listener,
    which authenticates callers itself, so the loopback Host/Origin check does not apply.
    ``observer`` hears when each response starts (:mod:`.observer`).
    """
    return ProxyApp(
        upstream_url,
        provider,
        upstream=upstream,
        name=name,
        replay_limit=replay_limit,
        client_token=client_token,
        reauthorizer=reauthorizer,
        behind_gateway=behind_gateway,
        observer=observer,
    )


class ProxyApp:
    """See the module docstring; built by :func:`create_proxy_app`."""

    def __init__(
        self,
        upstream_url: str,
        provider: TokenProvider | None,
        *,
        upstream: Upstream | None = None,
        name: str = "",
        replay_limit: int = DEFAULT_REPLAY_LIMIT,
        client_token: str | None = None,
        reauthorizer: Reauthorizer | None = None,
        behind_gateway: bool = False,
        observer: ProxyObserver = NO_PROXY_OBSERVER,
    ) -> None:
        origin = Origin.of(upstream_url)
        if origin is None:
            raise ValueError(f"upstream URL must be an absolute http(s) URL, got {upstream_url!r}")
        self.upstream_url = upstream_url
        self.name = name
        self._origin = origin
        self._provider = provider
        self._owns_upstream = upstream is None
        self._upstream = upstream or open_upstream(origin)
        self._replay_limit = replay_limit
        self._reauthorizer = reauthorizer
        self._who = f"workload {name!r}" if name else "the upstream"
        self._client_token = client_token
        self._loopback_only = not behind_gateway
        self._observer = observer

    def use_provider(self, provider: TokenProvider) -> None:
        """From now on, send the tokens of ``provider`` (a login arrived for a workload that had none)."""
        self._provider = provider

    async def aclose(self) -> None:
        """Close the upstream connections, unless the caller passed them in."""
        if self._owns_upstream:
            await self._upstream.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._handle(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003, "reason": "MCP does not use WebSockets"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._owns_upstream and self._upstream.is_closed:  # served again after a shutdown
                    self._upstream = open_upstream(self._origin)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            body = await read_request_body(scope["headers"], receive, self._replay_limit)
        except ClientDisconnected:
            return
        refusal = request_refusal(
            scope["method"], scope["headers"], self._client_token, loopback_only=self._loopback_only
        )
        if refusal is not None:
            log.warning("%s: refused a request (%s): %s", self._who, refusal.kind, refusal.message)
            await self._reply(send, scope["method"], body, refusal, started)
            return
        status: int | str = "cancelled"
        try:
            with anyio.CancelScope() as cancel_scope, DisconnectWatch(receive, body, cancel_scope) as watch:
                status = await self._forward(scope, body, send, watch, started)
        except ClientDisconnected:
            pass
        finally:
            await body.aclose()
            if log.isEnabledFor(logging.DEBUG):
                elapsed = (time.perf_counter() - started) * 1000
                log.debug(
                    "%s %s %s -> %s in %.1f ms", self.name, scope["method"], scope["path"], status, elapsed
                )

    async def _forward(
        self, scope: Scope, body: RequestBody, send: Send, watch: DisconnectWatch, started: float
    ) -> int:
        method: str = scope["method"]
        token: Token | None = None
        if self._provider is not None:
            try:
                token = await self._provider.token()
            except TokenUnavailableError as exc:
                return await self._reply(send, method, body, reply_for_token_error(exc, self.name), started)
        outcome = await self._open(scope, body, token)
        need = self._authorization_needed(outcome, token)
        if need is not None and not isinstance(outcome, LocalReply):
            outcome = await self._reauthorize(scope, body, need, outcome)
        elif not isinstance(outcome, LocalReply) and outcome.status_code == 401:
            outcome = await self._after_401(scope, body, token, outcome)
        if isinstance(outcome, LocalReply):
            return await self._reply(send, method, body, outcome, started)
        await self._relay(scope, outcome, send, watch, started)
        return outcome.status_code

    async def _open(
        self, scope: Scope, body: RequestBody, token: Token | None
    ) -> UpstreamResponse | LocalReply:
        """Send the request upstream and return once its response headers arrived."""
        try:
            return await self._upstream.send(
                scope["method"],
                self._target(scope),
                upstream_headers(scope["headers"], token.access_token if token is not None else None),
                body.content(),
            )
        except UpstreamTimeout as exc:
            return LocalReply(504, "upstream_timeout", f"{self._who}: {self._origin} timed out ({exc})")
        except UpstreamUnreachable as exc:
            return LocalReply(502, "upstream_unreachable", f"{self._who}: cannot reach {self._origin}: {exc}")

    async def _after_401(
        self, scope: Scope, body: RequestBody, sent: Token | None, rejected: UpstreamResponse
    ) -> UpstreamResponse | LocalReply:
        """The upstream refused a token we believed valid: refresh once, replay once."""
        await rejected.aclose()
        if sent is None or self._provider is None:
            return LocalReply(
                503,
                "upstream_unauthorized",
                f"{self._who} requires authorization but has no login; "
                f"run `mcpkeeper login {self.name or 'NAME'}`",
            )
        log.info("%s: upstream answered 401 to a token believed valid; forcing a refresh", self._who)
        try:
            fresh = await self._provider.force_refresh(sent)
        except TokenUnavailableError as exc:
            return reply_for_token_error(exc, self.name)
        if not body.replayable:
            return LocalReply(
                503,
                "token_refreshed",
                f"{self._who} rejected the token, which has now been refreshed; retry the request",
                retry_after=0,
            )
        again = await self._open(scope, body, fresh)
        if not isinstance(again, LocalReply) and again.status_code == 401:
            await again.aclose()
            # The token just obtained for this very request was refused too: the monitor
            # decides (a token from a forced refresh rejected again ends the grant).
            try:
                await self._provider.force_refresh(fresh)
            except TokenUnavailableError as exc:
                return reply_for_token_error(exc, self.name)
            return LocalReply(
                503,
                "token_refreshed",
                f"{self._who} rejected the token, which has now been refreshed; retry the request",
                retry_after=0,
            )
        return again

    def _authorization_needed(
        self, outcome: UpstreamResponse | LocalReply, sent: Token | None
    ) -> AuthorizationNeeded | None:
        if self._reauthorizer is None or isinstance(outcome, LocalReply):
            return None
        if outcome.status_code not in (401, 403):
            return None
        challenges = [v.decode("latin-1") for k, v in outcome.raw_headers if k.lower() == b"www-authenticate"]
        return authorization_needed(
            outcome.status_code, ", ".join(challenges) or None, sent, self._provider is not None
        )

    async def _reauthorize(
        self, scope: Scope, body: RequestBody, need: AuthorizationNeeded, rejected: UpstreamResponse
    ) -> UpstreamResponse | LocalReply:
        """The upstream wants (more) authorization: let the reauthorizer get it, then replay once."""
        await rejected.aclose()
        assert self._reauthorizer is not None
        what = "more scopes" if need.step_up else "authorization"
        log.info("%s: upstream asks for %s (HTTP %d)", self._who, what, need.status)
        try:
            provider = await self._reauthorizer.authorize(need)
        except AuthorizationRefused as exc:
            return LocalReply(exc.status, exc.kind, exc.message)
        self._provider = provider
        if not body.replayable:
            return LocalReply(
                503, "authorized", f"{self._who} is now authorized; retry the request", retry_after=0
            )
        try:
            token = await provider.token()
        except TokenUnavailableError as exc:
            return reply_for_token_error(exc, self.name)
        again = await self._open(scope, body, token)
        if isinstance(again, LocalReply) or again.status_code not in (401, 403):
            return again
        still = self._authorization_needed(again, token)
        if still is None and again.status_code == 403:
            return again  # a plain 403 (not about scopes) is the server's answer
        await again.aclose()
        wanted = " ".join(still.scopes) if still is not None and still.scopes else "authorization"
        return LocalReply(
            403 if again.status_code == 403 else 503,
            "insufficient_scope" if again.status_code == 403 else "upstream_unauthorized",
            f"{self._who} still refuses the request after a new login (it asks for {wanted}); "
            f"see `mcpkeeper status {self.name or 'NAME'}`",
        )

    @staticmethod
    def _target(scope: Scope) -> bytes:
        """The request target upstream: the local path (mount prefix removed) and query, raw."""
        path: bytes = scope.get("raw_path") or scope["path"].encode()
        root: str = scope.get("root_path", "")
        if root and path.startswith(root.encode()):
            path = path[len(root.encode()) :] or b"/"
        query: bytes = scope.get("query_string", b"")
        return path + b"?" + query if query else path

    def _rewriter(self, scope: Scope) -> UrlRewriter:
        host = header_value(scope["headers"], b"host")
        if host is not None:
            netloc = host.decode("latin-1")
        else:
            server_host, server_port = scope.get("server") or ("127.0.0.1", 80)
            netloc = f"{server_host}:{server_port}"
        root: str = scope.get("root_path", "")
        return UrlRewriter(self._origin, f"{scope['scheme']}://{netloc}{root}", root)

    async def _relay(
        self, scope: Scope, response: UpstreamResponse, send: Send, watch: DisconnectWatch, started: float
    ) -> None:
        """Stream ``response`` to the client chunk by chunk, as the upstream sends it.

        The last chunk goes with ``more_body=False`` when the upstream's answer is known to
        be complete: one write to the client fewer per exchange.
        """
        headers = downstream_headers(response.raw_headers)
        chunks: AsyncIterator[bytes] = response.aiter_raw()
        may_end_early = True
        if 300 <= response.status_code < 400:
            headers = self._rewrite_location(scope, headers)
        elif scope["method"] == "GET" and _is_event_stream(headers):
            # A GET stream may idle for hours: notice the client leaving at once. (A POST
            # answered with SSE usually ends with its result; the watch's timer covers
            # the ones that stay open.)
            watch.arm()
            chunks = rewrite_endpoint_event(chunks, self._rewriter(scope))
            headers = [(key, value) for key, value in headers if key != b"content-length"]
            may_end_early = False  # the rewriter may still hold bytes back
        try:
            self._observer.response_started(response.status_code, time.perf_counter() - started, None)
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            async for chunk in chunks:
                if may_end_early and response.complete:
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamBroken as exc:
            # Too late for a status: leave the response incomplete so the client sees a
            # broken stream rather than a truncated body that looks whole.
            log.warning("%s: upstream response broke off: %s", self._who, exc)
            self._observer.upstream_broken()
            return
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _rewrite_location(self, scope: Scope, headers: RawHeaders) -> RawHeaders:
        rewriter = self._rewriter(scope)
        return [
            (
                key,
                rewriter.rewrite(value.decode("latin-1")).encode("latin-1") if key == b"location" else value,
            )
            for key, value in headers
        ]

    async def _reply(
        self, send: Send, method: str, body: RequestBody, reply: LocalReply, started: float
    ) -> int:
        self._observer.response_started(reply.status, time.perf_counter() - started, reply.kind)
        if reply.status >= 500:
            log.info("%s: answering %d (%s): %s", self._who, reply.status, reply.kind, reply.message)
        headers, payload = reply.render(method, body.buffered)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})
        return reply.status


def _is_event_stream(headers: RawHeaders) -> bool:
    value = header_value(headers, b"content-type")
    return value is not None and value.lstrip().lower().startswith(b"text/event-stream")
