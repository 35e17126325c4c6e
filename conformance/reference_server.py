"""The reference MCP server for the suite's *server* scenarios, written with the official ``mcp`` SDK.

It offers what the scenarios ask for by name (``test_simple_text``, ``test://static-text``,
``test_simple_prompt``…) with the answers they check, so that run directly it passes them;
``conformance/run.py server`` then runs the same scenarios through ``mcpkeeper proxy --port``
in front of it and requires every check to come out the same. It is test scaffolding, not
part of mcpkeeper (it follows the scenario descriptions of the pinned suite).

    python conformance/reference_server.py --port 8931    # serves http://127.0.0.1:8931/mcp
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import EventMessage, EventStore
from mcp.shared.message import ServerMessageMetadata

TEST_IMAGE = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
TEST_AUDIO = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}
EMPTY = {"type": "object", "properties": {}}
_DEFAULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}
_ENUMS_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Select one option",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Select one option with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Select multiple options",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Select multiple options with titles",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}

TOOLS: list[dict[str, Any]] = [
    {"name": "test_simple_text", "description": "Tests simple text content response"},
    {"name": "test_image_content", "description": "Tests image content response"},
    {"name": "test_audio_content", "description": "Tests audio content response"},
    {"name": "test_embedded_resource", "description": "Tests embedded resource content response"},
    {"name": "test_multiple_content_types", "description": "Tests response with multiple content types"},
    {"name": "test_tool_with_logging", "description": "Tests tool that emits log messages during execution"},
    {"name": "test_tool_with_progress", "description": "Tests tool that reports progress notifications"},
    {"name": "test_error_handling", "description": "Tests error response handling"},
    {"name": "test_reconnection", "description": "Closes the SSE stream mid-call (SEP-1699)"},
    {
        "name": "test_sampling",
        "description": "Tests server-initiated sampling (LLM completion request)",
        "inputSchema": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
    },
    {
        "name": "test_elicitation",
        "description": "Tests server-initiated elicitation (user input request)",
        "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
    },
    {"name": "test_elicitation_sep1034_defaults", "description": "Tests elicitation with default values per SEP-1034"},
    {"name": "test_elicitation_sep1330_enums", "description": "Tests elicitation with enum schema improvements"},
    {"name": "json_schema_2020_12_tool", "description": "Tool with JSON Schema 2020-12 features (SEP-1613)",
     "inputSchema": SCHEMA_2020_12},
]  # fmt: skip

RESOURCES = [
    types.Resource(uri="test://static-text", name="static-text", title="Static Text Resource",
                   description="A static text resource for testing", mime_type="text/plain"),
    types.Resource(uri="test://static-binary", name="static-binary", title="Static Binary Resource",
                   description="A static binary resource (image) for testing", mime_type="image/png"),
    types.Resource(uri="test://watched-resource", name="watched-resource", title="Watched Resource",
                   description="A resource that auto-updates", mime_type="text/plain"),
]  # fmt: skip
TEMPLATES = [
    types.ResourceTemplate(uri_template="test://template/{id}/data", name="template", title="Resource Template",
                           description="A resource template with parameter substitution", mime_type="application/json"),
]  # fmt: skip
PROMPTS = [
    types.Prompt(name="test_simple_prompt", title="Simple Test Prompt", description="A simple prompt without arguments"),
    types.Prompt(name="test_prompt_with_arguments", title="Prompt With Arguments",
                 description="A prompt with required arguments",
                 arguments=[types.PromptArgument(name="arg1", description="First test argument", required=True),
                            types.PromptArgument(name="arg2", description="Second test argument", required=True)]),
    types.Prompt(name="test_prompt_with_embedded_resource", title="Prompt With Embedded Resource",
                 description="A prompt that includes an embedded resource",
                 arguments=[types.PromptArgument(name="resourceUri", description="URI of the resource to embed",
                                                 required=True)]),
    types.Prompt(name="test_prompt_with_image", title="Prompt With Image", description="A prompt that includes image content"),
]  # fmt: skip


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
    tools = [
        types.Tool(name=t["name"], description=t["description"], input_schema=t.get("inputSchema", EMPTY))
        for t in TOOLS
    ]
    return types.ListToolsResult(tools=tools)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    name, args = params.name, params.arguments or {}
    session = ctx.session
    if name == "test_simple_text":
        return types.CallToolResult(content=[_text("This is a simple text response for testing.")])
    if name == "test_image_content":
        return types.CallToolResult(
            content=[types.ImageContent(type="image", data=TEST_IMAGE, mime_type="image/png")]
        )
    if name == "test_audio_content":
        return types.CallToolResult(
            content=[types.AudioContent(type="audio", data=TEST_AUDIO, mime_type="audio/wav")]
        )
    if name == "test_embedded_resource":
        resource = types.TextResourceContents(
            uri="test://embedded-resource",
            mime_type="text/plain",
            text="This is an embedded resource content.",
        )
        return types.CallToolResult(content=[types.EmbeddedResource(type="resource", resource=resource)])
    if name == "test_multiple_content_types":
        resource = types.TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return types.CallToolResult(
            content=[
                _text("Multiple content types test:"),
                types.ImageContent(type="image", data=TEST_IMAGE, mime_type="image/png"),
                types.EmbeddedResource(type="resource", resource=resource),
            ]
        )
    if name == "test_tool_with_logging":
        for step in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            await session.send_notification(
                types.LoggingMessageNotification(
                    params=types.LoggingMessageNotificationParams(level="info", data=step)
                ),
                related_request_id=ctx.request_id,
            )
            await asyncio.sleep(0.05)
        return types.CallToolResult(content=[_text("Tool with logging executed successfully")])
    if name == "test_tool_with_progress":
        meta = dict(ctx.meta or {})
        token = meta.get("progressToken", meta.get("progress_token", 0))
        for done in (0, 50, 100):  # against the caller's progress token, if it sent one
            await session.report_progress(done, 100, f"Completed step {done} of 100")
            await asyncio.sleep(0.05)
        return types.CallToolResult(content=[_text(str(token))])
    if name == "test_error_handling":
        return types.CallToolResult(
            content=[_text("This tool intentionally returns an error for testing")], is_error=True
        )
    if name == "test_reconnection":
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
        await asyncio.sleep(0.1)
        return types.CallToolResult(
            content=[
                _text(
                    "Reconnection test completed successfully. If you received this, "
                    "the client properly reconnected after stream closure."
                )
            ]
        )
    if name == "test_sampling":
        return await _sampling(ctx, str(args.get("prompt", "")))
    if name == "test_elicitation":
        schema = {
            "type": "object",
            "properties": {"response": {"type": "string", "description": "User's response"}},
            "required": ["response"],
        }
        return await _elicit(ctx, str(args.get("message", "")), schema, "User response")
    if name == "test_elicitation_sep1034_defaults":
        message = "Please review and update the form fields with defaults"
        return await _elicit(ctx, message, _DEFAULTS_SCHEMA, "Elicitation completed")
    if name == "test_elicitation_sep1330_enums":
        message = "Please select options from the enum fields"
        return await _elicit(ctx, message, _ENUMS_SCHEMA, "Elicitation completed")
    if name == "json_schema_2020_12_tool":
        return types.CallToolResult(
            content=[
                _text(f"JSON Schema 2020-12 tool called with: {json.dumps(args, separators=(',', ':'))}")
            ]
        )
    return types.CallToolResult(content=[_text(f"unknown tool {name}")], is_error=True)


async def _sampling(ctx: Any, prompt: str) -> types.CallToolResult:
    request = types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=_text(prompt))], max_tokens=100
        )
    )
    try:
        # On the tool call's own stream (related_request_id), as the spec wants, never on the
        # standalone GET stream, which the client may not have opened yet.
        result = await ctx.session.send_request(
            request,
            types.CreateMessageResult,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
        content = result.content
        text = getattr(content, "text", None) or "No response"
        return types.CallToolResult(content=[_text(f"LLM response: {text}")])
    except Exception as exc:
        return types.CallToolResult(content=[_text(f"Sampling not supported or error: {exc}")])


async def _elicit(ctx: Any, message: str, schema: dict[str, Any], label: str) -> types.CallToolResult:
    request = types.ElicitRequest(
        params=types.ElicitRequestFormParams(message=message, requested_schema=schema)
    )
    try:
        result = await ctx.session.send_request(
            request, types.ElicitResult, metadata=ServerMessageMetadata(related_request_id=ctx.request_id)
        )
    except Exception as exc:
        return types.CallToolResult(content=[_text(f"Elicitation not supported or error: {exc}")])
    content = json.dumps(result.content or {}, separators=(",", ":"))
    return types.CallToolResult(content=[_text(f"{label}: action={result.action}, content={content}")])


async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=RESOURCES)


async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=TEMPLATES)


async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    if uri == "test://static-text":
        contents: list[Any] = [
            types.TextResourceContents(
                uri=uri, mime_type="text/plain", text="This is the content of the static text resource."
            )
        ]
    elif uri == "test://static-binary":
        contents = [types.BlobResourceContents(uri=uri, mime_type="image/png", blob=TEST_IMAGE)]
    elif uri == "test://watched-resource":
        contents = [
            types.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content")
        ]
    elif uri.startswith("test://template/") and uri.endswith("/data"):
        item = uri.removeprefix("test://template/").removesuffix("/data")
        text = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
        contents = [types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
    else:
        contents = []
    return types.ReadResourceResult(contents=contents)


async def subscribe(ctx: Any, params: Any) -> types.EmptyResult:
    return types.EmptyResult()


async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS)


async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    name, args = params.name, params.arguments or {}
    user = "user"
    if name == "test_simple_prompt":
        messages = [types.PromptMessage(role=user, content=_text("This is a simple prompt for testing."))]
    elif name == "test_prompt_with_arguments":
        text = f"Prompt with arguments: arg1='{args.get('arg1')}', arg2='{args.get('arg2')}'"
        messages = [types.PromptMessage(role=user, content=_text(text))]
    elif name == "test_prompt_with_embedded_resource":
        resource = types.TextResourceContents(
            uri=str(args.get("resourceUri", "test://embedded")),
            mime_type="text/plain",
            text="Embedded resource content for testing.",
        )
        messages = [
            types.PromptMessage(
                role=user, content=types.EmbeddedResource(type="resource", resource=resource)
            ),
            types.PromptMessage(role=user, content=_text("Please process the embedded resource above.")),
        ]
    elif name == "test_prompt_with_image":
        messages = [
            types.PromptMessage(role=user, content=types.ImageContent(type="image", data=TEST_IMAGE, mime_type="image/png")),
            types.PromptMessage(role=user, content=_text("Please analyze the image above.")),
        ]  # fmt: skip
    else:
        messages = []
    return types.GetPromptResult(messages=messages)


async def set_level(ctx: Any, params: Any) -> types.EmptyResult:
    return types.EmptyResult()


async def complete(ctx: Any, params: Any) -> types.CompleteResult:
    return types.CompleteResult(completion=types.Completion(values=[], total=0, has_more=False))


class MemoryEventStore(EventStore):
    """Resumability (SEP-1699): events kept in memory, replayed after the client's Last-Event-ID."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, Any]] = []

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = f"{stream_id}::{time.monotonic_ns():020d}"
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: Any) -> str | None:
        stream_id = last_event_id.split("::", 1)[0]
        for event_id, stream, message in list(self._events):
            if stream == stream_id and event_id > last_event_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def build() -> Server[Any]:
    return Server(
        "mcp-conformance-test-server",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=subscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_set_logging_level=set_level,
        on_completion=complete,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build().streamable_http_app(event_store=MemoryEventStore(), retry_interval=5000, host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
