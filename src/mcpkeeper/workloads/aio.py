"""A small asyncio idiom used wherever something runs "until the first of these ends"."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

__all__ = ["first_done"]


async def first_done(*waits: Awaitable[Any]) -> list[asyncio.Future[Any] | None]:
    """Wait until the first of ``waits`` ends and cancel the rest.

    Returns, position by position, the future of each wait that finished (call
    ``.result()`` to re-raise what it died of) and None for those that were cancelled.
    If the caller is cancelled, every wait is cancelled with it.
    """
    futures = [asyncio.ensure_future(wait) for wait in waits]
    try:
        done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
    return [future if future in done else None for future in futures]
