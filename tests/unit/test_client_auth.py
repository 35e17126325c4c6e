"""Client authentication: when it is required, the token file, the check, the snippets."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from mcpkeeper.cli.snippets import client_snippets
from mcpkeeper.net import LOOPBACK
from mcpkeeper.proxy._guard import request_refusal
from mcpkeeper.state.client_token import client_token_path, ensure_client_token, load_client_token
from mcpkeeper.workloads import client_auth
from mcpkeeper.workloads.client_auth import client_auth_required


def test_the_rule_requested_global_setting_or_not_loopback() -> None:
    assert client_auth.LOOPBACK == LOOPBACK
    assert not client_auth_required(False, environ={})
    assert client_auth_required(True, environ={})
    assert client_auth_required(False, environ={"MCPKEEPER_CLIENT_AUTH": "on"})
    assert not client_auth_required(False, environ={"MCPKEEPER_CLIENT_AUTH": "off"})
    assert client_auth_required(False, host="0.0.0.0", environ={})  # on by default off loopback


def test_the_token_is_made_once_0600_and_then_kept(tmp_path: Path) -> None:
    assert load_client_token(tmp_path) is None
    results: list[str] = []

    def create() -> None:
        results.append(ensure_client_token(tmp_path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(set(results)) == 1 and len(results[0]) >= 32  # racing creators agree on one
    assert stat.S_IMODE(client_token_path(tmp_path).stat().st_mode) == 0o600
    assert ensure_client_token(tmp_path) == load_client_token(tmp_path) == results[0]
    assert [p.name for p in client_token_path(tmp_path).parent.iterdir()] == ["client-token"]


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (None, False),
        (b"Bearer right-token-0123456789", True),
        (b"bearer   right-token-0123456789 ", True),
        (b"Bearer wrong-token-0123456789", False),
        (b"Bearer right-token-012345678", False),
        (b"Basic right-token-0123456789", False),
    ],
)
def test_only_the_client_token_as_a_bearer_passes(header: bytes | None, allowed: bool) -> None:
    headers = [(b"host", b"127.0.0.1:9")] + ([(b"authorization", header)] if header else [])
    refusal = request_refusal("POST", headers, "right-token-0123456789")
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.status == 403 and refusal.kind == "client_token_required"
        assert "right-token" not in refusal.message


def test_the_http_snippets_carry_the_token_and_connect_does_not_need_it() -> None:
    snippets = client_snippets("gh", "http://127.0.0.1:4100/mcp", client_token="tok")
    assert snippets["Cursor"]["mcpServers"]["gh"] == {
        "url": "http://127.0.0.1:4100/mcp",
        "headers": {"Authorization": "Bearer tok"},
    }
    assert snippets["VS Code"]["servers"]["gh"]["headers"] == {"Authorization": "Bearer tok"}
    connect = {"command": "mcpkeeper", "args": ["connect", "gh"]}
    assert snippets["Claude Desktop"]["mcpServers"]["gh"] == connect
    assert "headers" not in client_snippets("gh", "http://127.0.0.1:4100/mcp")["Cursor"]["mcpServers"]["gh"]
