"""Which headers cross the proxy: hop-by-hop dropped, Authorization replaced, the rest kept."""

from __future__ import annotations

from mcpkeeper.proxy._headers import downstream_headers, header_value, upstream_headers


def test_upstream_drops_hop_by_hop_host_and_client_authorization_and_adds_ours() -> None:
    client = [
        (b"host", b"127.0.0.1:8080"),
        (b"authorization", b"Bearer from-the-client"),
        (b"connection", b"keep-alive, x-hop"),
        (b"x-hop", b"listed in Connection"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"te", b"trailers"),
        (b"upgrade", b"h2c"),
        (b"proxy-authorization", b"Basic xyz"),
        (b"mcp-session-id", b"s-1"),
        (b"mcp-protocol-version", b"2025-06-18"),
        (b"last-event-id", b"42"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"accept-encoding", b"gzip"),
    ]
    assert upstream_headers(client, "our-token") == [
        (b"mcp-session-id", b"s-1"),
        (b"mcp-protocol-version", b"2025-06-18"),
        (b"last-event-id", b"42"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"accept-encoding", b"gzip"),
        (b"authorization", b"Bearer our-token"),
    ]


def test_upstream_without_token_sends_no_authorization_at_all() -> None:
    headers = upstream_headers([(b"authorization", b"Bearer client"), (b"accept", b"*/*")], None)
    assert header_value(headers, b"authorization") is None


def test_upstream_pins_identity_encoding_when_the_client_asked_for_none() -> None:
    # The body is relayed byte for byte: the upstream must not compress for a client
    # that never offered to decompress.
    headers = upstream_headers([(b"accept", b"*/*")], None)
    assert header_value(headers, b"accept-encoding") == b"identity"


def test_downstream_lowercases_and_drops_hop_by_hop_but_keeps_repeated_headers() -> None:
    upstream = [
        (b"Content-Type", b"text/event-stream"),
        (b"Connection", b"close, X-Private"),
        (b"X-Private", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Mcp-Session-Id", b"abc"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]
    assert downstream_headers(upstream) == [
        (b"content-type", b"text/event-stream"),
        (b"mcp-session-id", b"abc"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]


def test_date_and_server_come_once_from_our_own_server() -> None:
    from mcpkeeper.proxy._headers import downstream_headers

    upstream = [(b"Date", b"Fri, 27 Nov 2026 05:05:21 GMT"), (b"Server", b"uvicorn")]
    kept = downstream_headers([*upstream, (b"Content-Type", b"text/plain")])
    assert kept == [(b"content-type", b"text/plain")]
