"""``list`` at 80, 100 and 120 columns: every line fits, shortening is visible, nothing is lost."""

from __future__ import annotations

import pytest

from mcpkeeper.cli.list_layout import ListRow, middle_ellipsis, shorten_url, table_lines

LONG_REMOTE = "https://mcp.some-very-long-company-name.example.com/v2/tenants/acme-corporation/mcp"
LONG_REASON = (
    "token endpoint answered HTTP 503 (Service Unavailable) from a web application firewall; "
    "retrying in 40s (attempt 3/5), clients get 503 with Retry-After"
)
ROWS = [
    ListRow(
        "github",
        "running",
        "green",
        "https://api.githubcopilot.com/mcp/",
        "http://127.0.0.1:41001/mcp/",
        "5m ago",
        "token refreshed",
    ),
    ListRow(
        "acme-tenant",
        "auth_retrying",
        "yellow",
        LONG_REMOTE,
        "http://127.0.0.1:41002/v2/tenants/acme-corporation/mcp",
        "2h3m ago",
        LONG_REASON,
    ),
]


def _text(line: list[tuple[str, str | None]]) -> str:
    return "".join(text for text, _ in line)


def test_middle_ellipsis_keeps_both_ends() -> None:
    assert middle_ellipsis("https://mcp.example.com/mcp", 100) == "https://mcp.example.com/mcp"
    cut = middle_ellipsis("https://mcp.example.com/mcp", 15)
    assert cut == "https:/…com/mcp" and len(cut) == 15
    assert middle_ellipsis("abcdef", 1) == "…" and middle_ellipsis("abcdef", 0) == ""


def test_a_shortened_url_keeps_its_origin_whole() -> None:
    local = "http://127.0.0.1:41002/v2/tenants/acme-corporation/mcp"
    assert shorten_url(local, 30) == "http://127.0.0.1:41002…ion/mcp"
    assert shorten_url(local, 23) == "http://127.0.0.1:41002…"
    assert shorten_url(LONG_REMOTE, 20) == middle_ellipsis(LONG_REMOTE, 20)  # the origin alone is too long
    assert all(len(shorten_url(LONG_REMOTE, n)) == n for n in range(1, len(LONG_REMOTE)))


@pytest.mark.parametrize("width", [80, 100, 120])
def test_every_line_fits_and_every_cut_is_marked(width: int) -> None:
    lines = [_text(line) for line in table_lines(ROWS, width)]
    assert all(len(line) <= width for line in lines), lines
    assert lines[0].split() == ["NAME", "STATUS", "REMOTE", "LOCAL", "URL", "SINCE"]
    row = next(line for line in lines if line.startswith("acme-tenant"))
    assert "…" in row  # the long URLs were shortened, visibly
    assert row.split()[1] == "auth_retrying" and row.rstrip().endswith("2h3m ago")
    remote, local = row.split()[2:4]
    assert remote.startswith("https:/") and remote.endswith("/mcp")  # both ends readable
    assert local.startswith("http://127.0.0.1:41002")  # the port, which tells workloads apart
    reason = lines[lines.index(row) + 1]
    assert reason.startswith("  token endpoint answered HTTP 503")
    if len(LONG_REASON) + 2 > width:
        assert reason.endswith("… (mcpkeeper status acme-tenant)")
    else:
        assert reason == "  " + LONG_REASON


def test_without_a_width_nothing_is_shortened() -> None:
    lines = [_text(line) for line in table_lines(ROWS, None)]
    assert any(LONG_REMOTE in line for line in lines)
    assert "  " + LONG_REASON in lines
    assert not any("…" in line for line in lines)


def test_status_keeps_its_style_and_the_reason_is_dim() -> None:
    lines = table_lines(ROWS[:1], 80)
    assert ("running", "green") in lines[1]
    assert lines[2] == [("  token refreshed", "dim")]
