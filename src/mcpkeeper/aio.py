"""The two asyncio idioms mcpkeeper uses beyond ``asyncio.TaskGroup`` (see architecture.md §8).

Tasks a component owns for its lifetime live in an ``asyncio.TaskGroup`` (the daemon's
restore and store follower, through :func:`owned_tasks`); what is left are two shapes a
task group does not express:

* :func:`first_done`: run "until the first of these ends" (a stop request or a server
  that died), cancelling the rest;
* :class:`MustFinish`: work that must run to its end once started, whoever stops
  waiting for it. A token refresh is the case: once the request is sent, the server may
  have rotated the refresh token, and only saving the answer keeps the grant alive. A
  caller (a client's request, a monitor being stopped) may be cancelled; the work is
  not. Every such task belongs to one group, :data:`must_finish`, that the process
  waits for before it exits (:meth:`MustFinish.wait`), so a shutdown in the middle of a
  rotation still saves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

__all__ = ["MustFinish", "first_done", "must_finish", "owned_tasks"]

T = TypeVar("T")


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


@asynccontextmanager
async def owned_tasks() -> AsyncIterator[asyncio.TaskGroup]:
    """An ``asyncio.TaskGroup`` whose body's own failure comes out as itself.

    A task group reports what ended it as an ``ExceptionGroup``, even when that is one
    exception of its body; the daemon's start-up errors (a port taken, a bad setting) must
    reach the CLI as the plain exception it turns into one line. The owned tasks report
    their own failures (they log and go on), so a lone exception is the body's.
    """
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as grouped:
        if len(grouped.exceptions) == 1:
            raise grouped.exceptions[0] from None
        raise


class MustFinish:
    """An owned group of tasks that are never cancelled by those who wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` in the group; await the task through ``asyncio.shield`` (or :meth:`run`)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """``work``'s result; cancelling the caller leaves ``work`` running to its end."""
        return await asyncio.shield(self.start(work))

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the work in flight; how many are still running then.

        Called on the way out of a process, after the callers are stopped and before the
        HTTP clients the work uses are closed. What it cannot wait for is left to the
        event loop's own shutdown (which cancels it): the bound keeps a hung token
        endpoint from holding the exit forever.
        """
        pending = {task for task in self._tasks if not task.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return sum(1 for task in pending if not task.done())


#: The process's group of must-finish work (token refresh-and-save).
must_finish = MustFinish()
