"""``python -m mcpkeeper.testing serve`` in a real subprocess, steered over its control port."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mcpkeeper.testing",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@asynccontextmanager
async def serving(*extra: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    process = await spawn("serve", "--json", "--token-lifetime", "120", *extra)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        yield process, json.loads(line)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture
async def served() -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    async with serving() as started:
        yield started


async def test_serve_prints_one_json_line_and_the_control_port_switches_faults(
    served: tuple[asyncio.subprocess.Process, dict[str, Any]],
) -> None:
    process, info = served
    assert info["issuer"].startswith("http://127.0.0.1:")
    assert info["token_endpoint"] == info["issuer"] + "/token"
    assert info["mcp_url"].startswith("http://127.0.0.1:") and info["mcp_url"].endswith("/mcp")
    assert info["pid"] == process.pid
    control = info["control_url"]
    async with httpx.AsyncClient(timeout=5.0) as http:
        meta = (await http.get(info["issuer"] + "/.well-known/oauth-authorization-server")).json()
        assert meta["issuer"] == info["issuer"]
        assert (await http.post(info["mcp_url"], json={})).status_code == 401

        minted = (await http.post(control + "/mint", json={"client_id": "cli"})).json()
        assert minted["expires_in"] == 120
        form = {"grant_type": "refresh_token", "refresh_token": minted["refresh_token"], "client_id": "cli"}

        switched = await http.post(control + "/fault", json={"mode": "rate_limited_429", "retry_after": 9})
        assert switched.json() == {"mode": "rate_limited_429"}
        limited = await http.post(info["token_endpoint"], data=form)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "9"

        await http.post(control + "/fault", json={"mode": "ok"})
        await http.post(control + "/lifetime", json={"seconds": 7})
        refreshed = await http.post(info["token_endpoint"], data=form)
        assert refreshed.status_code == 200
        assert refreshed.json()["expires_in"] == 7

        assert (await http.post(control + "/revoke-all-access-tokens")).json() == {"revoked": 2}
        counters = (await http.get(control + "/counters")).json()
        assert counters["auth"]["by_outcome"] == {"rate_limited_429": 1, "ok": 1}
        assert counters["auth"]["by_grant"] == {"refresh_token": 2}
        assert counters["mcp"]["statuses"] == {"401": 1}

        bad = await http.post(control + "/fault", json={"mode": "flaky"})
        assert bad.status_code == 400
        assert "mode must be one of" in bad.json()["error"]

    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_refused_over_the_control_port_and_back(
    served: tuple[asyncio.subprocess.Process, dict[str, Any]],
) -> None:
    process, info = served
    async with httpx.AsyncClient(timeout=5.0) as http:
        await http.post(info["control_url"] + "/fault", json={"mode": "refused"})
        with pytest.raises(httpx.ConnectError):
            await http.post(info["token_endpoint"], data={"grant_type": "refresh_token"})
        await http.post(info["control_url"] + "/fault", json={"mode": "ok"})
        response = await http.post(info["token_endpoint"], data={"grant_type": "refresh_token"})
        assert response.status_code == 401  # no client: the AS answers again, same URL
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_refresh_reuse_grace_is_a_serve_option() -> None:
    async with serving("--refresh-reuse-grace") as (_, info), httpx.AsyncClient(timeout=5.0) as http:
        minted = (await http.post(info["control_url"] + "/mint", json={"client_id": "cli"})).json()
        form = {"grant_type": "refresh_token", "refresh_token": minted["refresh_token"], "client_id": "cli"}
        answers = [(await http.post(info["token_endpoint"], data=form)).status_code for _ in range(2)]
        assert answers == [200, 200]  # the successor was never used: the spent token is honoured
        counters = (await http.get(info["control_url"] + "/counters")).json()["auth"]
        assert (counters["grace_reuse"], counters["spent_token_reuse"]) == (1, 0)


async def test_bad_arguments_exit_with_a_usage_error() -> None:
    process = await spawn("serve", "--token-lifetime", "-5")
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 2
    assert stdout == b""
    assert b"must be positive" in stderr
