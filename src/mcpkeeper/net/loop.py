"""Running the process's event loop: uvloop where it exists, asyncio's own elsewhere.

The daemon and a foreground ``proxy`` spend their time relaying HTTP between sockets;
uvloop's libuv-based loop roughly halves the per-request CPU of that relay. It is not
available on Windows, where the standard loop serves unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from mcpkeeper.aio import must_finish

__all__ = ["run"]

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return None
    return uvloop.new_event_loop


#: How long a process on its way out waits for must-finish work (a refresh being saved).
EXIT_GRACE = 10.0


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available.

    Before the loop closes (and cancels what is left), the must-finish work still in
    flight (:data:`mcpkeeper.aio.must_finish`: a rotated token being saved) gets up to
    :data:`EXIT_GRACE` seconds to end, however ``main`` ended.
    """
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        try:
            return runner.run(main)
        finally:
            if must_finish.running:
                runner.run(must_finish.wait(EXIT_GRACE))
