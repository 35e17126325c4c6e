"""mcp-remote's command-line flags, mapped onto ``mcpkeeper proxy URL --stdio``.

A user replaces ``npx mcp-remote URL [flags]`` in a client's config with
``mcpkeeper proxy URL --stdio [the same flags]``. Each flag of mcp-remote either means
something here (and is mapped), means nothing here because mcpkeeper always does it
(accepted, no effect), or asks for something mcpkeeper does not do (refused with a
sentence saying why: silently ignoring ``--ignore-tool delete*`` would expose the very
tools the user meant to hide). The README's migration table lists them all.

Pure functions: the JSON of ``--static-oauth-client-*`` is read here (``@file`` or
inline), everything else is checked and turned into :class:`McpRemoteFlags`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpkeeper.cli.errors import CliError, ExitCode

__all__ = ["McpRemoteFlags", "parse_headers", "read_json_argument", "resolve_flags"]

_HEADER = re.compile(r"([A-Za-z0-9_-]+):\s*(.*)")
_TRANSPORTS = ("http-first", "http-only", "sse-first", "sse-only")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})
_MAX_JSON_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class McpRemoteFlags:
    """What the mcp-remote flags amount to."""

    headers: dict[str, str] = field(default_factory=dict)
    callback_port: int | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: list[str] | None = None
    resource: str | None = None
    omit_resource: bool = False
    login_timeout: float | None = None
    #: Things said on stderr (a flag that changes nothing here, a field not used).
    notes: tuple[str, ...] = ()


def resolve_flags(
    *,
    positional_port: int | None,
    callback_port: int | None,
    headers: Sequence[str],
    resource: str | None,
    disable_resource: bool,
    static_client_info: str | None,
    static_client_metadata: str | None,
    transport: str | None,
    host: str | None,
    auth_timeout: int | None,
    ignore_tools: Sequence[str],
    client_id: str | None,
    client_secret: str | None,
    scopes: list[str] | None,
) -> McpRemoteFlags:
    """Check the flags together and map them (usage errors say which flag and why)."""
    if ignore_tools:
        raise CliError(
            "--ignore-tool is not supported: mcpkeeper does not filter a server's tools; "
            "remove the tools from the server's side or leave --ignore-tool out knowingly",
            ExitCode.USAGE,
        )
    notes: list[str] = []
    port = _one_callback_port(positional_port, callback_port)
    if transport is not None:
        notes.extend(_transport_note(transport))
    if host is not None and host not in _LOOPBACK_HOSTS:
        raise CliError(f"--host {host}: mcpkeeper's OAuth callback listens on 127.0.0.1 only", ExitCode.USAGE)
    resource = resource.strip() if resource is not None else None
    if resource and disable_resource:
        raise CliError("--resource and --disable-resource-parameter exclude each other", ExitCode.USAGE)
    if resource and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s]", resource):
        raise CliError(f"--resource must be an absolute URI (RFC 8707), not {resource!r}", ExitCode.USAGE)
    info = (
        read_json_argument(static_client_info, "--static-oauth-client-info")
        if static_client_info is not None
        else None
    )
    metadata = (
        read_json_argument(static_client_metadata, "--static-oauth-client-metadata")
        if static_client_metadata
        else {}
    )
    client_id, client_secret = _static_client(info, client_id, client_secret)
    scopes, metadata_notes = _static_metadata(metadata, scopes)
    notes.extend(metadata_notes)
    return McpRemoteFlags(
        headers=parse_headers(headers),
        callback_port=port,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        resource=resource or None,
        omit_resource=disable_resource or resource == "",  # `--resource ""`: how people switch it off
        login_timeout=float(auth_timeout) if auth_timeout is not None else None,
        notes=tuple(notes),
    )


def parse_headers(raw: Sequence[str]) -> dict[str, str]:
    """``Name: value`` (or ``Name:value``) pairs, as mcp-remote reads them; Authorization refused."""
    headers: dict[str, str] = {}
    for item in raw:
        match = _HEADER.fullmatch(item.strip())
        if match is None:
            raise CliError(f"--header must look like 'Name: value', not {item[:60]!r}", ExitCode.USAGE)
        name, value = match.groups()
        if name.lower() in ("authorization", "host", "cookie"):
            raise CliError(
                f"--header {name}: mcpkeeper sends the server its own OAuth token; a static credential "
                "needs no keeper (give the client the server's URL with that header instead)",
                ExitCode.USAGE,
            )
        headers[name] = value
    return headers


def read_json_argument(value: str, flag: str) -> dict[str, Any]:
    """The JSON object of ``value``: inline, or the contents of the file after ``@``."""
    text = value
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_JSON_BYTES + 1)
        except OSError as exc:
            raise CliError(f"{flag}: cannot read {path}: {exc.strerror or exc}", ExitCode.USAGE) from None
        if len(data) > _MAX_JSON_BYTES:
            raise CliError(f"{flag}: {path} is not a small JSON file", ExitCode.USAGE)
        text = data.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        raise CliError(f"{flag} is not valid JSON (nor @FILE holding JSON)", ExitCode.USAGE) from None
    if not isinstance(parsed, dict):
        raise CliError(f"{flag} must be a JSON object", ExitCode.USAGE)
    return parsed


def _one_callback_port(positional: int | None, option: int | None) -> int | None:
    if positional is not None and option is not None and positional != option:
        raise CliError(
            f"two callback ports: {positional} (after the URL) and --callback-port {option}", ExitCode.USAGE
        )
    return option if option is not None else positional


def _transport_note(transport: str) -> list[str]:
    if transport not in _TRANSPORTS:
        raise CliError(f"--transport must be one of {', '.join(_TRANSPORTS)}", ExitCode.USAGE)
    if transport == "sse-only":
        raise CliError(
            "--transport sse-only: the stdio bridge speaks streamable HTTP; for a server with only the "
            "old HTTP+SSE transport, run `mcpkeeper proxy URL --port N` and give an SSE-capable client "
            "the local URL (the proxy passes SSE through)",
            ExitCode.USAGE,
        )
    if transport == "sse-first":
        return ["--transport sse-first: mcpkeeper's bridge uses streamable HTTP (no SSE first)"]
    return []


def _static_client(
    info: dict[str, Any] | None, client_id: str | None, client_secret: str | None
) -> tuple[str | None, str | None]:
    """``client_id``/``client_secret`` from mcp-remote's static client information."""
    if info is None:
        return client_id, client_secret
    found_id, found_secret = info.get("client_id"), info.get("client_secret")
    if not isinstance(found_id, str) or not found_id:
        raise CliError("--static-oauth-client-info needs a client_id", ExitCode.USAGE)
    if client_id is not None and client_id != found_id:
        raise CliError("--client-id and --static-oauth-client-info name two clients", ExitCode.USAGE)
    secret = found_secret if isinstance(found_secret, str) and found_secret else None
    return found_id, client_secret or secret


def _static_metadata(
    metadata: dict[str, Any], scopes: list[str] | None
) -> tuple[list[str] | None, list[str]]:
    """The scopes of mcp-remote's static client metadata; the other fields are said to be unused."""
    notes = []
    scope = metadata.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise CliError("--static-oauth-client-metadata: scope must be a string", ExitCode.USAGE)
    if scope and scopes is None:
        scopes = scope.split()
    unused = sorted(key for key in metadata if key != "scope")
    if unused:
        notes.append(
            f"--static-oauth-client-metadata: {', '.join(unused)} not used (mcpkeeper registers as itself; "
            "a client you registered goes in --static-oauth-client-info or --client-id)"
        )
    return scopes, notes
