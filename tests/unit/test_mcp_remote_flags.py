"""mcp-remote's flags, mapped onto ``mcpkeeper proxy`` (or refused with a reason)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.mcp_remote_flags import parse_headers, read_json_argument, resolve_flags


def _resolve(**overrides: Any) -> Any:
    flags: dict[str, Any] = {
        "positional_port": None,
        "callback_port": None,
        "headers": [],
        "resource": None,
        "disable_resource": False,
        "static_client_info": None,
        "static_client_metadata": None,
        "transport": None,
        "host": None,
        "auth_timeout": None,
        "ignore_tools": [],
        "client_id": None,
        "client_secret": None,
        "scopes": None,
    }
    flags.update(overrides)
    return resolve_flags(**flags)


def _usage_error(match: str, **overrides: Any) -> None:
    with pytest.raises(CliError, match=match) as raised:
        _resolve(**overrides)
    assert raised.value.exit_code == ExitCode.USAGE
    assert "\n" not in raised.value.message


def test_nothing_given_maps_to_nothing() -> None:
    flags = _resolve()
    assert flags.headers == {} and flags.callback_port is None and flags.notes == ()
    assert flags.resource is None and not flags.omit_resource and flags.login_timeout is None


def test_the_callback_port_comes_after_the_url_or_as_a_flag() -> None:
    assert _resolve(positional_port=9696).callback_port == 9696
    assert _resolve(callback_port=9696, positional_port=9696).callback_port == 9696
    _usage_error("two callback ports", positional_port=9696, callback_port=9697)


def test_headers_as_mcp_remote_reads_them_but_never_a_credential() -> None:
    assert parse_headers(["X-Tenant: acme", "X-Trace:abc", "X-Empty:"]) == {
        "X-Tenant": "acme",
        "X-Trace": "abc",
        "X-Empty": "",
    }
    _usage_error("must look like 'Name: value'", headers=["no colon here"])
    _usage_error("sends the server its own OAuth token", headers=["Authorization: Bearer ${TOKEN}"])


def test_resource_is_an_absolute_uri_or_disabled() -> None:
    assert _resolve(resource="https://tenant1.atlassian.net/").resource == "https://tenant1.atlassian.net/"
    assert _resolve(resource=" ").omit_resource  # `--resource ""` is how people switch it off
    assert _resolve(disable_resource=True).omit_resource
    _usage_error("absolute URI", resource="tenant1")
    _usage_error("exclude each other", resource="https://t/", disable_resource=True)


def test_static_client_info_inline_or_from_a_file(tmp_path: Path) -> None:
    flags = _resolve(static_client_info='{"client_id": "abc", "client_secret": "s3"}')
    assert (flags.client_id, flags.client_secret) == ("abc", "s3")
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"client_id": "from-file"}))
    assert _resolve(static_client_info=f"@{info}").client_id == "from-file"
    _usage_error("needs a client_id", static_client_info="{}")
    _usage_error("name two clients", static_client_info='{"client_id": "a"}', client_id="b")
    _usage_error("cannot read", static_client_info=f"@{tmp_path / 'missing.json'}")


def test_static_client_metadata_gives_the_scope_and_says_what_is_unused() -> None:
    flags = _resolve(static_client_metadata='{"scope": "read write", "software_id": "x"}')
    assert flags.scopes == ["read", "write"]
    assert any("software_id not used" in note for note in flags.notes)
    assert _resolve(static_client_metadata='{"scope": "a"}', scopes=["b"]).scopes == ["b"]  # --scope wins
    _usage_error("scope must be a string", static_client_metadata='{"scope": 1}')


def test_transport_strategies() -> None:
    assert _resolve(transport="http-first").notes == ()
    assert _resolve(transport="http-only").notes == ()
    assert "streamable HTTP" in _resolve(transport="sse-first").notes[0]
    _usage_error("the stdio bridge speaks streamable HTTP", transport="sse-only")
    _usage_error("must be one of", transport="carrier-pigeon")


def test_refused_flags_say_why() -> None:
    _usage_error("does not filter a server's tools", ignore_tools=["delete*"])
    _usage_error("listens on 127.0.0.1 only", host="0.0.0.0")
    assert _resolve(host="localhost").notes == ()


def test_auth_timeout_is_the_login_wait() -> None:
    assert _resolve(auth_timeout=60).login_timeout == 60.0


def test_json_arguments_must_be_small_objects(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="must be a JSON object"):
        read_json_argument("[1]", "--x")
    with pytest.raises(CliError, match="not valid JSON"):
        read_json_argument("{nope", "--x")
    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * 70_000 + '"}')
    with pytest.raises(CliError, match="not a small JSON file"):
        read_json_argument(f"@{big}", "--x")
