"""Running the process's event loop: uvloop where it exists, asyncio's own elsewhere.

The daemon and a foreground ``proxy`` spend their time relaying HTTP between sockets;
uvloop's libuv-based loop roughly halves the per-request CPU of that relay. It is not
available on Windows, where the standard loop serves unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)
