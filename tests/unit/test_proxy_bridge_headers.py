"""The per-message HTTP headers the stdio bridge derives from bare JSON-RPC traffic."""

from __future__ import annotations

from typing import Any

from mcp_types import JSONRPCError, JSONRPCMessage, jsonrpc_message_adapter

from mcpkeeper.proxy._bridge_headers import HeaderStamper

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
}


def _message(**fields: Any) -> JSONRPCMessage:
    return jsonrpc_message_adapter.validate_python({"jsonrpc": "2.0", **fields}, by_name=False)


def test_handshake_version_is_learnt_from_the_initialize_result() -> None:
    stamper = HeaderStamper()
    assert (
        stamper.outbound(_message(id=1, method="initialize", params={"protocolVersion": "2025-06-18"}))
        is None
    )
    assert stamper.outbound(_message(id=2, method="ping")) is None  # nothing negotiated yet
    stamper.inbound(_message(id=1, result={"protocolVersion": "2025-06-18", "capabilities": {}}))
    expected = {"mcp-protocol-version": "2025-06-18"}
    assert stamper.outbound(_message(id=3, method="tools/call", params={"name": "echo"})) == expected
    assert stamper.outbound(_message(method="notifications/initialized")) == expected
    assert stamper.outbound(_message(id=99, result={})) == expected  # our answer to a server request


def test_results_of_other_requests_are_not_taken_for_the_version() -> None:
    stamper = HeaderStamper()
    stamper.outbound(_message(id=1, method="initialize", params={}))
    stamper.inbound(_message(id=7, result={"protocolVersion": "1999-01-01"}))
    assert stamper.outbound(_message(id=2, method="ping")) is None


def test_a_failed_initialize_is_forgotten() -> None:
    stamper = HeaderStamper()
    stamper.outbound(_message(id=1, method="initialize", params={}))
    error = _message(id=1, error={"code": -32600, "message": "no"})
    assert isinstance(error, JSONRPCError)
    stamper.inbound(error)
    stamper.forget(1)
    stamper.inbound(_message(id=1, result={"protocolVersion": "2025-06-18"}))
    assert stamper.outbound(_message(id=2, method="ping")) is None


def test_modern_requests_carry_version_method_and_name() -> None:
    stamper = HeaderStamper()
    call = _message(id=1, method="tools/call", params={"name": "echo", "arguments": {}, "_meta": MODERN_META})
    assert stamper.outbound(call) == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "echo",
    }
    read = _message(id=2, method="resources/read", params={"uri": "file:///a", "_meta": MODERN_META})
    assert stamper.outbound(read) == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "resources/read",
        "mcp-name": "file:///a",
    }
    discover = _message(id=3, method="server/discover", params={"_meta": MODERN_META})
    assert stamper.outbound(discover) == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "server/discover",
    }


def test_x_mcp_header_arguments_are_mirrored_after_tools_list() -> None:
    stamper = HeaderStamper()
    stamper.outbound(_message(id=1, method="tools/list", params={"_meta": MODERN_META}))
    region = {"type": "string", "x-mcp-header": "Region"}
    bad = {"type": "number", "x-mcp-header": "N"}
    stamper.inbound(
        _message(
            id=1,
            result={
                "tools": [
                    {"name": "deploy", "inputSchema": {"type": "object", "properties": {"region": region}}},
                    {"name": "broken", "inputSchema": {"type": "object", "properties": {"n": bad}}},
                ]
            },
        )
    )
    deploy = _message(
        id=2,
        method="tools/call",
        params={"name": "deploy", "arguments": {"region": "eu"}, "_meta": MODERN_META},
    )
    assert stamper.outbound(deploy) == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "deploy",
        "Mcp-Param-Region": "eu",
    }
    broken = _message(
        id=3, method="tools/call", params={"name": "broken", "arguments": {"n": 1}, "_meta": MODERN_META}
    )
    headers = stamper.outbound(broken)
    assert headers is not None
    assert not any(name.startswith("Mcp-Param-") for name in headers)
