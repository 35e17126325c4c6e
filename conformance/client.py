"""The MCP conformance suite's client under test: an MCP client *through* ``mcpkeeper proxy --stdio``.

``conformance client --command "python conformance/client.py"`` starts one scenario's
servers, appends the server URL to the command and sets ``MCP_CONFORMANCE_SCENARIO`` (and,
for some scenarios, ``MCP_CONFORMANCE_CONTEXT``: credentials as JSON). This script then
does what a user's MCP client would do with mcpkeeper in front of a remote server:

1. spawn ``mcpkeeper proxy URL --stdio`` (flags from the context: a pre-registered client,
   client credentials, a private key file) in a fresh, private ``MCPKEEPER_HOME``, with a
   scripted ``$BROWSER`` (:mod:`browser`) that follows the authorization server's
   redirects, i.e. a user who approves at once;
2. with the official ``mcp`` SDK client over that stdio: initialize, list the tools and
   call each one with arguments made from its input schema.

Everything OAuth (discovery, registration, PKCE, step-up, client credentials…) is
mcpkeeper's job; this script knows nothing of it. Exit status 0 means every step worked.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters
from mcp_types import ElicitRequestParams, ElicitResult, ErrorData

#: The client id document URL the suite's CIMD scenario expects (it never fetches it).
CIMD_CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
_HERE = Path(__file__).resolve().parent
_TIMEOUT = 60.0


def proxy_flags(scenario: str, context: dict[str, Any], home: Path) -> list[str]:
    """The ``mcpkeeper proxy`` options a user would give for this scenario's server."""
    if scenario == "auth/client-credentials-jwt":
        key = home / "client-key.pem"
        key.write_text(str(context["private_key_pem"]))
        key.chmod(0o600)
        return [
            "--grant",
            "client-credentials",
            "--client-id",
            str(context["client_id"]),
            "--private-key",
            str(key),
        ]
    if scenario == "auth/client-credentials-basic":
        return ["--grant", "client-credentials", "--client-id", str(context["client_id"])]
    if "client_id" in context:  # a pre-registered client (its secret goes through the environment)
        return ["--client-id", str(context["client_id"])]
    if scenario.startswith("auth/"):
        return ["--client-metadata-url", CIMD_CLIENT_METADATA_URL]
    return []


def _browser_command(home: Path) -> Path:
    """``webbrowser`` runs ``$BROWSER`` as one program name: wrap our interpreter and script in one."""
    wrapper = home / "browser"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{_HERE / "browser.py"}" "$@"\n')
    wrapper.chmod(0o700)
    return wrapper


def proxy_environment(context: dict[str, Any], home: Path) -> dict[str, str]:
    env = {
        "MCPKEEPER_HOME": str(home),
        "MCPKEEPER_SECRET_BACKEND": "file",
        "BROWSER": str(_browser_command(home)),
        "PYTHONUNBUFFERED": "1",
    }
    if "client_secret" in context:
        env["MCPKEEPER_CLIENT_SECRET"] = str(context["client_secret"])
    return env


def example_value(schema: Any) -> Any:
    """A value that satisfies a (simple) JSON schema: what a model would fill in."""
    if not isinstance(schema, dict):
        return None
    if "default" in schema:
        return schema["default"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {name: example_value(sub) for name, sub in properties.items()}
    return {"string": "conformance", "integer": 2, "number": 3, "boolean": True, "array": []}.get(str(kind))


async def accept_with_defaults(
    context: ClientRequestContext, params: ElicitRequestParams
) -> ElicitResult | ErrorData:
    """Accept an elicitation, filling every field that has a default (SEP-1034)."""
    schema = getattr(params, "requested_schema", None) or {}
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    content = {
        name: sub["default"] for name, sub in properties.items() if isinstance(sub, dict) and "default" in sub
    }
    return ElicitResult(action="accept", content=content)


async def exercise(url: str, scenario: str, context: dict[str, Any], home: Path) -> None:
    command = os.environ.get("MCPKEEPER_COMMAND", str(Path(sys.executable).with_name("mcpkeeper")))
    params = StdioServerParameters(
        command=command,
        args=["proxy", url, "--stdio", *proxy_flags(scenario, context, home)],
        env=proxy_environment(context, home),
    )
    async with Client(
        params, mode="legacy", read_timeout_seconds=_TIMEOUT, elicitation_callback=accept_with_defaults
    ) as client:
        listed = await client.list_tools()
        for tool in listed.tools:
            arguments = example_value(tool.input_schema) or {}
            await client.call_tool(tool.name, arguments)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: client.py SERVER_URL", file=sys.stderr)
        return 2
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    with tempfile.TemporaryDirectory(prefix="mcpkeeper-conformance-") as home:
        try:
            anyio.run(exercise, argv[-1], scenario, context, Path(home))
        except Exception as exc:
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # the SDK's task groups wrap the one real error
            print(f"conformance client: {scenario}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
