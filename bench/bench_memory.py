"""Daemon memory per workload (target: <= 2 MB RSS per added workload).

One daemon hosts every workload, so what a workload costs in memory decides how many a
laptop can keep. For 1, 10 and 100 workloads this starts a real daemon
(``python -m mcpkeeper.daemon``, fresh ``MCPKEEPER_HOME``), creates the workloads over
the control API against one fixture MCP server (logins minted by the fixture
authorization server, no browser), makes one MCP call through every workload so each
proxy path has really been used, and reads the daemon's RSS with psutil.

The headline is the slope, (RSS(100) - RSS(1)) / 99: the fixed cost of the interpreter
and libraries is paid once and is not a per-workload cost.

Usage: python bench/bench_memory.py [--counts 1,10,100] [--format table|json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

TARGET_MB_PER_WORKLOAD = 2.0
_MB = 1024 * 1024
_SETTLE_SECONDS = 1.0


async def _measure(count: int, auth: Any, mcp: Any) -> dict[str, float]:
    from mcp import Client

    from mcpkeeper.api.client import AsyncDaemonClient
    from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
    from mcpkeeper.auth.registration import ClientRegistration
    from mcpkeeper.auth.token import Token

    home = Path(tempfile.mkdtemp(prefix="mcpk-mem-"))
    env = {**os.environ, "MCPKEEPER_HOME": str(home), "MCPKEEPER_SECRET_BACKEND": "file"}
    store = CredentialStore.open(home)
    for index in range(count):
        name = f"w{index:03d}"
        minted = auth.mint(f"client-{name}", resource=mcp.url)
        now = time.time()
        token = Token(
            access_token=minted["access_token"],
            refresh_token=minted.get("refresh_token"),
            expires_at=now + float(minted["expires_in"]),
            issued_at=now,
        )
        store.save(
            name,
            StoredLogin(
                remote_url=mcp.url,
                issuer=auth.issuer,
                authorization_endpoint=auth.authorization_endpoint,
                token_endpoint=auth.token_endpoint,
                client=ClientRegistration(client_id=f"client-{name}"),
                resource=mcp.url,
                token=token,
            ),
        )
    (home / "logs").mkdir(parents=True, exist_ok=True)
    with open(home / "logs" / "daemon.log", "ab") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "mcpkeeper.daemon"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    client = AsyncDaemonClient(home)
    try:
        deadline = time.monotonic() + 15
        while not await client.ping():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"daemon did not start; see {home / 'logs' / 'daemon.log'}")
            await asyncio.sleep(0.05)
        idle = psutil.Process(daemon.pid).memory_info().rss
        urls = [(await client.create_workload(f"w{index:03d}", mcp.url))["url"] for index in range(count)]
        for url in urls:
            async with Client(url) as session:
                result = await session.call_tool("echo", {"text": "memory"})
                if result.is_error:
                    raise SystemExit(f"echo through {url} failed")
        statuses = {w["status"] for w in await client.list_workloads()}
        if statuses != {"running"}:
            raise SystemExit(f"not every workload is running: {statuses}")
        await asyncio.sleep(_SETTLE_SECONDS)
        rss = psutil.Process(daemon.pid).memory_info().rss
        await client.shutdown()
        daemon.wait(30)
    finally:
        await client.aclose()
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        shutil.rmtree(home, ignore_errors=True)
    return {"workloads": count, "idle_rss_mb": idle / _MB, "rss_mb": rss / _MB}


async def run(counts: list[int]) -> dict[str, Any]:
    from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer

    rows = []
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        for count in counts:
            rows.append(await _measure(count, auth, mcp))
            gc.collect()
    low, high = rows[0], rows[-1]
    span = high["workloads"] - low["workloads"]
    slope = (high["rss_mb"] - low["rss_mb"]) / span if span else 0.0
    return {
        "rows": rows,
        "mb_per_workload": slope,
        "target_mb_per_workload": TARGET_MB_PER_WORKLOAD,
        "ok": slope <= TARGET_MB_PER_WORKLOAD,
    }


def _print_table(result: dict[str, Any]) -> None:
    print(f"{'workloads':>9}  {'daemon RSS (MB)':>15}  {'idle daemon (MB)':>16}")
    for row in result["rows"]:
        print(f"{row['workloads']:>9}  {row['rss_mb']:>15.1f}  {row['idle_rss_mb']:>16.1f}")
    verdict = "OK" if result["ok"] else "OVER TARGET"
    print(
        f"per added workload: {result['mb_per_workload']:.2f} MB "
        f"(target <= {result['target_mb_per_workload']:.1f} MB) {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,100", help="workload counts to measure, ascending")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    counts = sorted(int(part) for part in args.counts.split(","))
    result = asyncio.run(run(counts))
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
