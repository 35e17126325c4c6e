"""Calls through several paths, interleaved call by call (shared by the latency benches).

Load from other processes on a shared machine falls on every path alike when the paths
take turns, and the order flips each round so that no path always goes first.
"""

from __future__ import annotations

import time

from mcp.client import Client


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
