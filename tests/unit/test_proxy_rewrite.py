"""Upstream-origin URLs (Location, the legacy SSE ``endpoint`` event) pointed back at the proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcpkeeper.proxy._rewrite import Origin, UrlRewriter, rewrite_endpoint_event

UPSTREAM = Origin.of("https://mcp.example.com/mcp")
assert UPSTREAM is not None
REWRITER = UrlRewriter(UPSTREAM, "http://127.0.0.1:9000")


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://MCP.example.com/x", Origin("https", "mcp.example.com", 443)),
        ("https://mcp.example.com:443/x", Origin("https", "mcp.example.com", 443)),
        ("http://127.0.0.1:8080", Origin("http", "127.0.0.1", 8080)),
        ("http://[::1]:81/x", Origin("http", "::1", 81)),
        ("/relative", None),
        ("ftp://host/x", None),
        ("http://host:notaport/", None),
    ],
)
def test_origin_of(url: str, origin: Origin | None) -> None:
    assert Origin.of(url) == origin


def test_origin_prints_without_default_port() -> None:
    assert str(Origin("https", "mcp.example.com", 443)) == "https://mcp.example.com"
    assert str(Origin("http", "::1", 8080)) == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mcp.example.com/messages/?session_id=1", "http://127.0.0.1:9000/messages/?session_id=1"),
        ("https://mcp.example.com:443/a#frag", "http://127.0.0.1:9000/a#frag"),
        ("https://mcp.example.com", "http://127.0.0.1:9000/"),
        ("/messages/?session_id=1", "/messages/?session_id=1"),
        ("messages/", "messages/"),
        ("http://mcp.example.com/x", "http://mcp.example.com/x"),  # another origin (scheme differs)
        ("https://evil.example/x", "https://evil.example/x"),
        ("//mcp.example.com/x", "//mcp.example.com/x"),
    ],
)
def test_rewrite_maps_only_the_upstream_origin(url: str, expected: str) -> None:
    assert REWRITER.rewrite(url) == expected


def test_rewrite_under_a_mount_prefix_prefixes_root_relative_paths() -> None:
    mounted = UrlRewriter(UPSTREAM, "http://127.0.0.1:9000/w/github", "/w/github")
    assert mounted.rewrite("/messages/") == "/w/github/messages/"
    assert mounted.rewrite("https://mcp.example.com/messages/") == "http://127.0.0.1:9000/w/github/messages/"


async def _relay(chunks: list[bytes]) -> bytes:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return b"".join([part async for part in rewrite_endpoint_event(source(), REWRITER)])


async def test_endpoint_event_split_across_chunks_is_rewritten() -> None:
    stream = [
        b": ping\r\n\r\n",
        b"event: endpo",
        b"int\r\ndata: https://mcp.example.com/messages/?session_id=9\r",
        b"\n\r\nevent: message\r\ndata: {}\r\n\r\n",
    ]
    assert await _relay(stream) == (
        b": ping\r\n\r\n"
        b"event: endpoint\r\ndata: http://127.0.0.1:9000/messages/?session_id=9\r\n\r\n"
        b"event: message\r\ndata: {}\r\n\r\n"
    )


async def test_only_the_first_data_event_is_inspected() -> None:
    stream = [
        b"event: message\ndata: {}\n\n",
        b"event: endpoint\ndata: https://mcp.example.com/later\n\n",
    ]
    assert await _relay(stream) == b"".join(stream)


async def test_stream_without_event_boundary_is_released_unchanged() -> None:
    head = b"data: " + b"x" * (70 * 1024)
    assert await _relay([head, b"\n\n"]) == head + b"\n\n"
    assert await _relay([b"data: unterminated"]) == b"data: unterminated"


async def test_data_field_without_space_and_foreign_endpoint() -> None:
    assert await _relay([b"event:endpoint\ndata:https://mcp.example.com/m\n\n"]) == (
        b"event:endpoint\ndata: http://127.0.0.1:9000/m\n\n"
    )
    foreign = b"event: endpoint\ndata: https://other.example/m\n\n"
    assert await _relay([foreign]) == foreign
