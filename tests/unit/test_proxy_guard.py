"""Only loopback Host and Origin reach the token-injecting proxy (DNS rebinding, cross-origin)."""

from __future__ import annotations

import pytest

from mcpkeeper.proxy._guard import foreign_request


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"host", b"127.0.0.1:8123")],
        [(b"host", b"localhost:8123")],
        [(b"host", b"LOCALHOST")],
        [(b"host", b"[::1]:8123")],
        [(b"host", b"127.0.0.1:8123"), (b"origin", b"http://localhost:6274")],
        [(b"origin", b"https://127.0.0.1")],
    ],
)
def test_loopback_requests_pass(headers: list[tuple[bytes, bytes]]) -> None:
    assert foreign_request(headers) is None


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ([(b"host", b"attacker.example:8123")], "forbidden_host"),
        ([(b"host", b"127.0.0.1.attacker.example")], "forbidden_host"),
        ([(b"host", b"[::1")], "forbidden_host"),
        ([(b"host", b"127.0.0.1:8123"), (b"origin", b"https://attacker.example")], "forbidden_origin"),
        ([(b"origin", b"null")], "forbidden_origin"),
        ([(b"origin", b"file://")], "forbidden_origin"),
        ([(b"origin", b"http://localhost.attacker.example")], "forbidden_origin"),
    ],
)
def test_anything_else_is_refused(headers: list[tuple[bytes, bytes]], kind: str) -> None:
    refusal = foreign_request(headers)
    assert refusal is not None
    assert (refusal.status, refusal.kind) == (403, kind)
