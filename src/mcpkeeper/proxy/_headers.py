"""Which headers cross the proxy, in each direction.

A reverse proxy forwards end-to-end headers untouched (``Mcp-Session-Id``,
``MCP-Protocol-Version``, ``Mcp-Method``, ``Last-Event-ID``, ``Content-Type``, ``Accept``
and whatever a future revision of MCP adds) and drops the hop-by-hop ones, which
describe one TCP connection only (RFC 9110 §7.6.1). On the way up it also drops the
client's ``Authorization``: the workload's token is the only credential the upstream
may see, and a client must not be able to override it.

Header names arrive lower-cased from the ASGI server and are matched as bytes, because
this runs on every request.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RawHeaders", "downstream_headers", "header_value", "upstream_headers"]

RawHeaders = list[tuple[bytes, bytes]]

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Never forwarded upstream: ``host`` is the upstream's own (httpx sets it), and the
# client's ``authorization`` is replaced by the workload's token.
_NOT_UPSTREAM = _HOP_BY_HOP | {b"host", b"authorization"}
# uvicorn writes its own Date and Server on every response; passing the upstream's too
# would send each header twice.
_SET_BY_OUR_SERVER = frozenset({b"date", b"server"})


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of ``name`` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Extra hop-by-hop names listed in ``Connection`` (RFC 9110 §7.6.1)."""
    tokens: set[bytes] = set()
    for key, value in headers:
        if key.lower() == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return frozenset(tokens)


def upstream_headers(client_headers: Iterable[tuple[bytes, bytes]], bearer: str | None) -> RawHeaders:
    """The client's end-to-end headers, plus our ``Authorization`` when there is a token.

    ``Accept-Encoding`` is pinned to what the client asked for (``identity`` when it said
    nothing) because the response body is relayed byte for byte: the upstream must not
    compress for a client that never offered to decompress.
    """
    client_headers = list(client_headers)
    drop = _NOT_UPSTREAM | _connection_tokens(client_headers)
    out: RawHeaders = []
    saw_accept_encoding = False
    for key, value in client_headers:
        if key in drop:
            continue
        if key == b"accept-encoding":
            saw_accept_encoding = True
        out.append((key, value))
    if not saw_accept_encoding:
        out.append((b"accept-encoding", b"identity"))
    if bearer is not None:
        out.append((b"authorization", b"Bearer " + bearer.encode("latin-1")))
    return out


def downstream_headers(upstream: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The upstream response's end-to-end headers, names lower-cased as ASGI expects."""
    pairs = [(key.lower(), value) for key, value in upstream]
    drop = _HOP_BY_HOP | _SET_BY_OUR_SERVER | _connection_tokens(pairs)
    return [(key, value) for key, value in pairs if key not in drop]
