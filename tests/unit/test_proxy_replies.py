"""The responses the proxy makes up: 503 with Retry-After, JSON-RPC errors carrying the request id."""

from __future__ import annotations

import json
import math

import pytest

from mcpkeeper.auth.errors import AuthRetryingError, UnauthenticatedError
from mcpkeeper.proxy._replies import PROXY_ERROR_CODE, LocalReply, reply_for_token_error, retry_after_seconds


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(12.3, 13), (12.0, 12), (0.01, 1), (0.0, 0), (-5.0, 0), (None, None), (math.nan, None)],
)
def test_retry_after_rounds_up_to_whole_seconds(seconds: float | None, header: int | None) -> None:
    assert retry_after_seconds(seconds) == header


def test_auth_retrying_reply() -> None:
    reply = reply_for_token_error(AuthRetryingError("token endpoint answered HTTP 502", 12.3), "github")
    assert (reply.status, reply.kind, reply.retry_after) == (503, "auth_retrying", 12.3)
    assert "workload 'github'" in reply.message
    assert "token endpoint answered HTTP 502" in reply.message
    assert "retry in 13 s" in reply.message


def test_unauthenticated_reply_says_how_to_log_in() -> None:
    reply = reply_for_token_error(UnauthenticatedError("invalid_grant"), "github")
    assert (reply.status, reply.kind, reply.retry_after) == (503, "unauthenticated", None)
    assert "run `mcpkeeper login github`" in reply.message
    nameless = reply_for_token_error(UnauthenticatedError("invalid_grant"), "")
    assert "run `mcpkeeper login NAME`" in nameless.message


REPLY = LocalReply(503, "auth_retrying", "no token", retry_after=12.3)


def test_jsonrpc_request_gets_a_jsonrpc_error_with_its_id() -> None:
    headers, body = REPLY.render("POST", b'{"jsonrpc": "2.0", "id": "abc", "method": "tools/call"}')
    assert dict(headers)[b"retry-after"] == b"13"
    assert dict(headers)[b"content-type"] == b"application/json"
    assert int(dict(headers)[b"content-length"]) == len(body)
    assert json.loads(body) == {
        "jsonrpc": "2.0",
        "id": "abc",
        "error": {
            "code": PROXY_ERROR_CODE,
            "message": "no token",
            "data": {"status": "auth_retrying", "http_status": 503, "retry_after": 13},
        },
    }


def test_jsonrpc_batch_gets_one_error_per_request() -> None:
    batch = b'[{"jsonrpc": "2.0", "id": 1, "method": "a"}, {"jsonrpc": "2.0", "method": "note"}]'
    _, body = REPLY.render("POST", batch)
    assert [error["id"] for error in json.loads(body)] == [1]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("POST", None),
        ("POST", b"not json"),
        ("POST", b'{"no": "jsonrpc"}'),
        ("POST", b"[1, 2]"),
        ("DELETE", b'{"jsonrpc": "2.0", "id": 1}'),
    ],
)
def test_anything_else_gets_a_plain_json_error(method: str, body: bytes | None) -> None:
    headers, payload = REPLY.render(method, body)
    assert json.loads(payload) == {"error": "no token", "status": "auth_retrying", "retry_after": 13}
    assert dict(headers)[b"retry-after"] == b"13"


def test_notification_and_odd_ids_answer_with_null_id() -> None:
    _, body = REPLY.render("POST", b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    assert json.loads(body)["id"] is None
    _, body = REPLY.render("POST", b'{"jsonrpc": "2.0", "id": {"weird": 1}, "method": "x"}')
    assert json.loads(body)["id"] is None


def test_no_retry_after_header_when_waiting_will_not_help() -> None:
    headers, payload = LocalReply(503, "unauthenticated", "log in").render("GET", None)
    assert b"retry-after" not in dict(headers)
    assert json.loads(payload)["retry_after"] is None
