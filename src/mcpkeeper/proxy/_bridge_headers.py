"""The HTTP headers an MCP client session would have put on each message.

Over streamable HTTP a client states the protocol version (and, from the 2026-07-28
revision on, the method, the tool/prompt/resource name and ``x-mcp-header`` arguments) in
headers as well as in the body. A stdio client writes bare JSON-RPC lines, so the bridge
derives the headers from the traffic itself, the way the SDK's ``ClientSession`` stamps
them: the handshake-era version from the ``initialize`` result, the modern-era one from
each request's ``_meta``, and the ``Mcp-Param-*`` mirrors from the tool schemas seen in
``tools/list`` results.
"""

from __future__ import annotations

from typing import Any

from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
    find_invalid_x_mcp_header,
    mcp_param_headers,
    x_mcp_header_map,
)
from mcp_types import PROTOCOL_VERSION_META_KEY, JSONRPCMessage, JSONRPCRequest, JSONRPCResponse, RequestId

__all__ = ["HeaderStamper"]


class HeaderStamper:
    """Watches both directions of one bridged session and says which headers each message needs."""

    def __init__(self) -> None:
        self._handshake_version: str | None = None
        self._initialize_ids: set[RequestId] = set()
        self._tools_list_ids: set[RequestId] = set()
        self._param_maps: dict[str, dict[tuple[str, ...], str]] = {}

    def outbound(self, message: JSONRPCMessage) -> dict[str, str] | None:
        """Headers for a client message about to be POSTed (None: nothing to add)."""
        if not isinstance(message, JSONRPCRequest):
            return self._version_only()
        params: dict[str, Any] = message.params or {}
        if message.method == "initialize":
            self._initialize_ids.add(message.id)
            return None
        if message.method == "tools/list":
            self._tools_list_ids.add(message.id)
        meta = params.get("_meta")
        modern_version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
        if not isinstance(modern_version, str):
            return self._version_only()
        headers = {MCP_PROTOCOL_VERSION_HEADER: modern_version, MCP_METHOD_HEADER: message.method}
        name_key = NAME_BEARING_METHODS.get(message.method)
        if name_key is not None and isinstance(name := params.get(name_key), str):
            headers[MCP_NAME_HEADER] = encode_header_value(name)
            if message.method == "tools/call" and (param_map := self._param_maps.get(name)):
                arguments = params.get("arguments")
                headers.update(mcp_param_headers(param_map, arguments if isinstance(arguments, dict) else {}))
        return headers

    def inbound(self, message: JSONRPCMessage) -> None:
        """Learn from a server message (the negotiated version, tool schemas)."""
        if not isinstance(message, JSONRPCResponse):
            return
        result = message.result
        if message.id in self._initialize_ids:
            self._initialize_ids.discard(message.id)
            version = result.get("protocolVersion")
            self._handshake_version = version if isinstance(version, str) else None
        elif message.id in self._tools_list_ids:
            self._tools_list_ids.discard(message.id)
            self._absorb_tools(result.get("tools"))

    def forget(self, request_id: RequestId) -> None:
        """The request was answered with an error: stop waiting for its result."""
        self._initialize_ids.discard(request_id)
        self._tools_list_ids.discard(request_id)

    def _version_only(self) -> dict[str, str] | None:
        if self._handshake_version is None:
            return None
        return {MCP_PROTOCOL_VERSION_HEADER: self._handshake_version}

    def _absorb_tools(self, tools: Any) -> None:
        if not isinstance(tools, list):
            return
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(name := tool.get("name"), str):
                continue
            schema = tool.get("inputSchema")
            if find_invalid_x_mcp_header(schema) is not None:
                self._param_maps.pop(name, None)
                continue
            param_map = x_mcp_header_map(schema)
            if param_map:
                self._param_maps[name] = param_map
            else:
                self._param_maps.pop(name, None)
