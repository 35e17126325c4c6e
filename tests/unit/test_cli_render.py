"""The CLI's pure parts: wording of ages and times, client snippets, error lines, names."""

from __future__ import annotations

import errno
import json
from datetime import UTC, datetime, timedelta

import pytest

from mcpkeeper.cli._options import checked_name
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.failures import describe_failure
from mcpkeeper.cli.render import ellipsize, format_instant, humanise_age, humanise_delta, status_style
from mcpkeeper.cli.snippets import client_snippets
from mcpkeeper.state.statuses import WorkloadStatus


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (-5, "0s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (3600 + 20 * 60, "1h20m"),
        (86400, "1d"),
        (86400 * 2 + 3600 * 4 + 59, "2d4h"),
    ],
)
def test_humanise_delta(seconds: float, expected: str) -> None:
    assert humanise_delta(seconds) == expected


def test_humanise_age_says_ago_and_dash_when_unknown() -> None:
    now = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
    assert humanise_age(now - timedelta(minutes=5), now) == "5m ago"
    assert humanise_age(None, now) == "-"


def test_format_instant_gives_direction() -> None:
    now = 1_700_000_000.0
    assert format_instant(now + 300, now).endswith("(in 5m)")
    assert format_instant(now - 7200, now).endswith("(2h ago)")
    assert format_instant(None, now) == "-"


def test_ellipsize_flattens_and_cuts() -> None:
    assert ellipsize("a\nb   c", 20) == "a b c"
    cut = ellipsize("x" * 100, 10)
    assert len(cut) == 10 and cut.endswith("…")


def test_every_status_has_a_distinct_attention_colour() -> None:
    assert status_style(WorkloadStatus.RUNNING) == "green"
    assert status_style(WorkloadStatus.AUTH_RETRYING) == "yellow"
    assert "red" in status_style(WorkloadStatus.UNAUTHENTICATED)
    assert all(status_style(s) for s in WorkloadStatus)
    assert status_style("not-a-status") == status_style(WorkloadStatus.UNKNOWN)


def test_client_snippets_match_each_clients_schema() -> None:
    snippets = client_snippets("gh", "http://127.0.0.1:4100/mcp", command="mcpkeeper")
    assert snippets["Claude Desktop"] == {
        "mcpServers": {"gh": {"command": "mcpkeeper", "args": ["connect", "gh"]}}
    }
    assert snippets["Cursor"] == {"mcpServers": {"gh": {"url": "http://127.0.0.1:4100/mcp"}}}
    assert snippets["VS Code"] == {"servers": {"gh": {"type": "http", "url": "http://127.0.0.1:4100/mcp"}}}
    assert snippets["Claude Code"] == {
        "mcpServers": {"gh": {"type": "http", "url": "http://127.0.0.1:4100/mcp"}}
    }
    assert snippets["Windsurf"] == {"mcpServers": {"gh": {"serverUrl": "http://127.0.0.1:4100/mcp"}}}
    json.dumps(snippets)  # printable as JSON as-is


def test_checked_name_turns_a_bad_name_into_a_usage_error() -> None:
    assert checked_name("github.com-1") == "github.com-1"
    with pytest.raises(CliError) as caught:
        checked_name("../etc")
    assert caught.value.exit_code == ExitCode.USAGE
    assert "\n" not in caught.value.message


def test_describe_failure_wording_and_codes() -> None:
    assert describe_failure(CliError("nope", ExitCode.NOT_FOUND)) == ("nope", ExitCode.NOT_FOUND)
    message, code = describe_failure(OSError(errno.EADDRINUSE, "port 4100 on 127.0.0.1 is already in use"))
    assert code == ExitCode.FAILURE and "4100" in message and "in use" in message
    message, code = describe_failure(RuntimeError("boom\nsecond line"))
    assert code == ExitCode.FAILURE
    assert (
        message.startswith("unexpected RuntimeError: boom") and "\n" not in message and "--debug" in message
    )


def test_describe_failure_knows_login_and_daemon_errors() -> None:
    from mcpkeeper.api.client import DaemonError, DaemonUnavailableError
    from mcpkeeper.auth.login_errors import DiscoveryError

    assert describe_failure(DiscoveryError("no metadata at https://x")) == (
        "login failed: no metadata at https://x",
        ExitCode.FAILURE,
    )
    assert describe_failure(DaemonError("no workload named 'x'", 404)) == (
        "no workload named 'x'",
        ExitCode.NOT_FOUND,
    )
    assert describe_failure(DaemonError("port taken", 400))[1] == ExitCode.FAILURE
    assert describe_failure(DaemonUnavailableError("not answering", None))[1] == ExitCode.DAEMON_UNAVAILABLE
