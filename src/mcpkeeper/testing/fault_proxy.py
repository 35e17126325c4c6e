"""A fault-injecting reverse proxy in front of any authorization server's token endpoint.

The fixture AS (:mod:`.auth_server`) has its faults built in; a server nobody here wrote
(``oidc-provider``, Keycloak, ...) has not. Put this proxy in front of it and make the
proxy's URL the issuer the client sees: discovery, registration, the authorize redirects
and every other path pass through untouched (``Host`` included, so the server's metadata
names the proxy's endpoints), while requests to the token endpoint meet the fault modes
of :mod:`.faults`, switched at run time with :meth:`TokenFaultProxy.set_fault`.

``refused`` closes the listening port (every path is refused, as when the server is down)
and restoring re-binds the same port. ``hang`` holds token requests unanswered and never
forwards them; unlike the fixture AS, restoring does *not* release the held ones: a
request that hung in real life stays hung after the server recovers, until its client
gives up. So a client must not wait out a hung attempt once the endpoint answers again.

A fault can also be *armed* (``on_next_refresh=True``): it takes effect with the next
``refresh_token`` grant request, which is then the first one to fail. That is "an outage
beginning when the refresh falls due", whatever the client's schedule.

What the token endpoint saw is counted in :attr:`TokenFaultProxy.counters` (by grant type,
outcome, fault) and listed request by request in :attr:`TokenFaultProxy.requests`. A spent
refresh token presented again (one the server already answered 200 for) is counted in
``counters.spent_token_reuse``; only digests of token values are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import httpx
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from mcpkeeper.testing._serve import ServedApp
from mcpkeeper.testing.counters import TokenCounters
from mcpkeeper.testing.faults import FaultMode, FaultSettings, UnparsableBody, fault_response

__all__ = ["TokenFaultProxy", "TokenRequest"]

#: Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy recomputes.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
#: A held (``hang``) request is dropped after this long even if its client never gives up.
_MAX_HOLD = 300.0
_UPSTREAM_TIMEOUT = 30.0

#: Called with the status and body of the upstream's answer before it is sent on.
_AnswerHook = Callable[[int, bytes], None]


@dataclass(slots=True)
class TokenRequest:
    """One request that reached the token endpoint, as the proxy saw it."""

    #: Wall-clock arrival time (``time.time()``).
    at: float
    grant_type: str
    #: The fault in force when it arrived ("ok" when none).
    fault: str
    #: "ok" (a token issued), the server's RFC 6749 error code, "http_<status>" for another
    #: answer, the fault mode that answered, or "" while it is still in flight.
    outcome: str = ""
    #: Wall-clock time the answer left (or the hold ended).
    done_at: float | None = None
    #: SHA-256 (hex) of the refresh token presented, if any: tests can tell which token
    #: a request carried without the proxy keeping the secret.
    presented: str | None = None


class TokenFaultProxy:
    """``async with TokenFaultProxy(upstream) as proxy:`` serves ``proxy.url`` on 127.0.0.1.

    ``upstream`` (the real server's base URL) may be set after the proxy is listening,
    because the server usually has to be told the proxy's URL as its issuer first.
    ``token_path`` is the token endpoint's path on the upstream (``/token`` for
    oidc-provider and the fixture AS).
    """

    def __init__(
        self,
        upstream: str | None = None,
        *,
        token_path: str = "/token",  # noqa: S107 - a URL path, not a password
        port: int = 0,
    ) -> None:
        self.upstream = upstream
        self.token_path = token_path
        self.counters = TokenCounters()
        self.requests: list[TokenRequest] = []
        #: Wall-clock time the current fault took effect (``None`` while ``ok``).
        self.fault_since: float | None = None
        self._fault = FaultSettings()
        self._armed: FaultSettings | None = None
        self._spent: set[str] = set()
        self._closing = asyncio.Event()
        self._entered = False
        self._http: httpx.AsyncClient | None = None
        self._served = ServedApp(self._app, port=port, lifespan="off")

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> TokenFaultProxy:
        self._closing = asyncio.Event()
        self._http = httpx.AsyncClient(follow_redirects=False, timeout=_UPSTREAM_TIMEOUT, trust_env=False)
        self._entered = True
        await self._served.start_listening()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._entered = False
        self._closing.set()  # held requests end now instead of stalling the shutdown
        await self._served.stop_listening()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def port(self) -> int:
        return self._served.port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash: the issuer the client is told."""
        return self._served.url

    # -- run-time switches -----------------------------------------------------------------

    @property
    def fault(self) -> FaultMode:
        return self._fault.mode

    @property
    def armed(self) -> FaultMode | None:
        """The fault waiting for the next refresh request, if any."""
        return None if self._armed is None else self._armed.mode

    async def set_fault(
        self,
        mode: FaultMode | str,
        *,
        retry_after: int | None = 30,
        body: UnparsableBody = "html",
        on_next_refresh: bool = False,
    ) -> None:
        """Switch the token endpoint's fault now, or arm it for the next refresh request.

        ``refused`` cannot be armed (the port closes before any request could arrive):
        switch it at a time instead. Switching to any mode but ``refused`` re-binds the
        port if it was closed; held ``hang`` requests stay held.
        """
        settings = FaultSettings(FaultMode(mode), retry_after=retry_after, body=body)
        if on_next_refresh:
            if settings.mode is FaultMode.REFUSED:
                raise ValueError("refused cannot be armed on a request; switch it at a time")
            self._armed = settings
            return
        self._armed = None
        await self._switch(settings)

    async def _switch(self, settings: FaultSettings) -> None:
        previous = self._fault.mode
        self._fault = settings
        if settings.mode is not previous:
            self.fault_since = None if settings.mode is FaultMode.OK else time.time()
        if settings.mode is FaultMode.REFUSED:
            await self._served.stop_listening()
        elif self._entered and not self._served.listening:
            await self._served.start_listening()

    def reset_counters(self) -> None:
        self.counters.reset()
        self.requests.clear()

    # -- what happened ---------------------------------------------------------------------

    def refreshes(self, outcome: str | None = "ok", *, since: float = 0.0) -> list[TokenRequest]:
        """``refresh_token`` grant requests that arrived at or after ``since`` (wall clock),
        with ``outcome`` (``None``: any, including in flight)."""
        return [
            r
            for r in self.requests
            if r.grant_type == "refresh_token" and r.at >= since and (outcome is None or r.outcome == outcome)
        ]

    # -- HTTP ------------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if scope["method"] == "POST" and scope["path"] == self.token_path:
            await self._token(scope, body, receive, send)
            return
        if scope["path"] == self.token_path and await self._outage_answer(scope, receive, send):
            return
        await self._forward(scope, body, send)

    async def _outage_answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """A GET (a client's reachability probe) meets the outage too: a WAF, a dead backend, a
        rate limiter and a hang answer every method alike. Verdict faults (``invalid_grant``)
        concern a grant, which a GET does not carry: those pass through."""
        mode = self._fault.mode
        if mode is FaultMode.HANG:
            await self._hold(receive)
            if self._closing.is_set():
                await PlainTextResponse("Service Unavailable", status_code=503)(scope, receive, send)
            return True
        if mode in (FaultMode.WAF_HTML_403, FaultMode.SERVER_ERROR_500, FaultMode.RATE_LIMITED_429):
            canned = fault_response(self._fault, None)
            assert canned is not None
            await canned(scope, receive, send)
            return True
        return False

    async def _token(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        form = parse_qs(body.decode("latin-1"), keep_blank_values=True)
        grant_type = (form.get("grant_type") or ["missing"])[0][:64]
        presented = next(iter(form.get("refresh_token", [])), None)
        if self._armed is not None and grant_type == "refresh_token":
            armed, self._armed = self._armed, None
            await self._switch(armed)
        settings = self._fault
        digest = None if presented is None else hashlib.sha256(presented.encode()).hexdigest()
        entry = TokenRequest(
            at=time.time(), grant_type=grant_type, fault=settings.mode.value, presented=digest
        )
        self.requests.append(entry)
        self.counters.record_request(grant_type, settings.mode.value, entry.at)
        if settings.mode is FaultMode.HANG:
            await self._hold(receive)
            self._finish(entry, FaultMode.HANG.value)
            if self._closing.is_set():
                await PlainTextResponse("Service Unavailable", status_code=503)(scope, receive, send)
            return  # the client gave up (or the hold cap passed): no answer at all
        if settings.mode is FaultMode.REFUSED:  # arrived just before the listener closed
            self._finish(entry, FaultMode.REFUSED.value)
            await PlainTextResponse("Service Unavailable", status_code=503)(scope, receive, send)
            return
        canned = fault_response(settings, presented)
        if canned is not None:
            self._finish(entry, settings.mode.value)
            await canned(scope, receive, send)
            return
        if digest is not None and digest in self._spent:
            self.counters.spent_token_reuse += 1
        status = await self._forward(scope, body, send, on_answer=lambda s, b: self._outcome(entry, s, b))
        if status == 200 and digest is not None:
            self._spent.add(digest)

    def _outcome(self, entry: TokenRequest, status: int, body: bytes) -> None:
        if status == 200:
            outcome = "ok"
        else:
            outcome = f"http_{status}"
            with contextlib.suppress(ValueError, AttributeError):
                error = json.loads(body).get("error")
                if isinstance(error, str):
                    outcome = error[:64]
        self._finish(entry, outcome)

    def _finish(self, entry: TokenRequest, outcome: str) -> None:
        entry.outcome, entry.done_at = outcome, time.time()
        self.counters.record_outcome(outcome)

    async def _forward(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        *,
        on_answer: _AnswerHook | None = None,
    ) -> int:
        """Pass the request to the upstream as it came; answer with what the upstream said."""
        if self._http is None or self.upstream is None:
            response: Response = PlainTextResponse("proxy has no upstream", status_code=502)
            await response(scope, _no_receive, send)
            return 502
        query = scope.get("query_string", b"")
        url = self.upstream.rstrip("/") + scope["path"] + (("?" + query.decode("latin-1")) if query else "")
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.lower() not in _HOP_BY_HOP and k.lower() != b"accept-encoding"
        ]
        headers.append(("accept-encoding", "identity"))
        try:
            upstream = await self._http.request(scope["method"], url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            response = PlainTextResponse(f"upstream unreachable: {type(exc).__name__}", status_code=502)
            if on_answer is not None:
                on_answer(502, b"")
            await response(scope, _no_receive, send)
            return 502
        content = upstream.content
        if on_answer is not None:
            on_answer(upstream.status_code, content)
        # httpx decoded any content coding: the body goes on as it is now, with its length.
        out_headers = [
            (k, v)
            for k, v in upstream.headers.raw
            if k.lower() not in _HOP_BY_HOP and k.lower() != b"content-encoding"
        ]
        out_headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": upstream.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": content})
        return upstream.status_code

    async def _hold(self, receive: Receive) -> None:
        """Until the client hangs up, the proxy closes, or :data:`_MAX_HOLD` passes."""
        gone = asyncio.ensure_future(_client_gone(receive))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({gone, closing}, timeout=_MAX_HOLD, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (gone, closing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
