"""The one rule for remote URLs (CLI, control API, config files)."""

from __future__ import annotations

import pytest

from mcpkeeper.state.remote_url import MAX_URL_LENGTH, InvalidRemoteUrlError, check_remote_url
from mcpkeeper.state.workload_store import WorkloadConfig


@pytest.mark.parametrize(
    "url",
    [
        "https://mcp.example.com/mcp",
        "http://127.0.0.1:8080/mcp?x=1",
        "http://[::1]:47001/mcp",
        "https://mcp.example.com/" + "a" * (MAX_URL_LENGTH - 30),
    ],
)
def test_ordinary_urls_pass_unchanged(url: str) -> None:
    assert check_remote_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://h/mcp\nX: y", "control characters"),
        ("http://h/mcp\r", "control characters"),
        ("http://h/m cp", "spaces"),
        ("http://user:s3cr3t@h/\n", "control characters"),
        ("http://h/\x1b[31mred", "control characters"),
        ("http://h/\u202eevil", "control characters"),  # bidi override
        ("http://user:s3cr3t@h/mcp", "user name or password"),
        ("http://user@h/mcp", "user name or password"),
        ("http://@h/mcp", "user name or password"),
        ("http://[::1:47001/mcp", "malformed"),
        ("http://h:99999/mcp", "malformed"),
        ("http://h:port/mcp", "malformed"),
        ("ftp://h/mcp", "http(s)"),
        ("/relative/mcp", "http(s)"),
        ("http:///mcp", "http(s)"),
        ("https://h/" + "a" * MAX_URL_LENGTH, "characters long"),
    ],
)
def test_bad_urls_are_refused_in_one_line_without_the_password(url: str, reason: str) -> None:
    with pytest.raises(InvalidRemoteUrlError) as refused:
        check_remote_url(url)
    message = str(refused.value)
    assert reason in message
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert "s3cr3t" not in message
    assert len(message) < 200


def test_the_config_model_applies_the_same_rule() -> None:
    with pytest.raises(ValueError, match="user name or password"):
        WorkloadConfig(name="w", remote_url="http://u:p@h/mcp")
