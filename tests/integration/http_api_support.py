"""Shared by the tests of the daemon's HTTP API, metrics and dashboard: a daemon started
with ``--api``, an authenticated client of its TCP listener, and metric parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mcpkeeper.api.http_listener import api_file
from mcpkeeper.state.api_token import load_api_token
from tests.integration.daemon_support import FAST_TIMINGS, DaemonProcess

#: The daemon's environment for these tests: fast monitor timings and the TCP API on a free port.
API_ENV = {**FAST_TIMINGS, "MCPKEEPER_API": "127.0.0.1:0"}


def api_url(home: Path) -> str:
    return str(json.loads(api_file(home).read_text())["url"])


def api_token(home: Path) -> str:
    token = load_api_token(home)
    assert token is not None, "the daemon made no API token"
    return token


@asynccontextmanager
async def api_daemon(
    home: Path, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[DaemonProcess, httpx.AsyncClient]]:
    """A daemon serving the TCP API, and an httpx client of it carrying the API token."""
    async with DaemonProcess(home, {**API_ENV, **(env or {})}) as daemon:
        headers = {"authorization": f"Bearer {api_token(home)}"}
        async with httpx.AsyncClient(base_url=api_url(home), headers=headers, timeout=10.0) as http:
            yield daemon, http


def metric_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, keyed by (name, labels)."""
    values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def sample(
    values: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return values.get((name, frozenset(labels.items())))
