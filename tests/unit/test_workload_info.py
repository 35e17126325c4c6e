"""workloads.info: the local URL rule and the JSON wording shared by the API and the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mcpkeeper.net import LOOPBACK
from mcpkeeper.proxy.app import local_url_for
from mcpkeeper.workloads import info
from mcpkeeper.workloads.info import iso_utc, local_url


def test_local_url_needs_a_port() -> None:
    assert local_url("https://h/", None) is None
    assert local_url("https://h", 5) == "http://127.0.0.1:5/"


def test_local_url_follows_the_proxys_rule() -> None:
    for remote in ("https://h", "https://h/mcp", "https://h:8443/a/b?x=1&y=2", "http://h/sse?k=v#frag"):
        assert local_url(remote, 41000) == local_url_for(remote, f"http://{LOOPBACK}:41000")
    assert info._LOOPBACK == LOOPBACK


def test_iso_utc_is_utc_with_z() -> None:
    moment = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert iso_utc(moment) == "2026-01-02T03:04:05Z"
