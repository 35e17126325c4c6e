"""What the latency benches share: their child processes, and interleaved calls.

Load from other processes on a shared machine falls on every path alike when the paths
take turns, and the order flips each round so that no path always goes first.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.client import Client

#: How long a child may take to say it is ready (seconds).
START_TIMEOUT = 60.0


@asynccontextmanager
async def ready_child(args: list[str], env: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Start a child that prints one JSON line when ready; yield that line; stop it on exit."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        if not line:
            raise RuntimeError(f"{args} exited before it was ready")
        yield json.loads(line)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def call_echo(client: Client, label: str, text: str) -> None:
    result = await client.call_tool("echo", {"text": text})
    if result.is_error:
        raise RuntimeError(f"echo failed on the {label} path: {result}")


async def interleaved_latencies(
    clients: dict[str, Client], calls: int, warmup: int
) -> dict[str, list[float]]:
    """Per path, the latency (ms) of ``calls`` echo calls, after ``warmup`` calls each."""
    latencies: dict[str, list[float]] = {label: [] for label in clients}
    for label, client in clients.items():
        for _ in range(warmup):
            await call_echo(client, label, "warm-up")
    order = list(clients.items())
    for i in range(calls):
        for label, client in order if i % 2 else order[::-1]:
            started = time.perf_counter()
            await call_echo(client, label, f"call {i}")
            latencies[label].append((time.perf_counter() - started) * 1000)
    return latencies
