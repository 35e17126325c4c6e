"""Cross-process named locks under ``<root>/locks/<name>.lock``.

The daemon and a foreground ``mcpkeeper proxy`` may hold the same refresh token; each
takes the workload's lock around a refresh (architecture.md §3.6) so the token is
spent once. The OS lock (``flock`` through :mod:`filelock`) is released by the kernel
when its holder dies, so a crashed process never leaves a stale lock behind.

Usable from both worlds:

* sync: ``with lock:`` / ``lock.acquire(timeout)`` blocks the calling thread;
* async: ``async with lock:`` / ``await lock.acquire_async(timeout)`` makes only
  non-blocking attempts and sleeps between them with ``asyncio.sleep``, so the event loop
  is never blocked for more than one ``flock`` syscall, and no thread is involved.

A handle is **not reentrant** and is owned by one holder at a time. Two handles on the
same name exclude each other even inside one process (each has its own descriptor), so
concurrent tasks each take their own handle from :meth:`Locks.lock`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import filelock

from mcpkeeper.state.names import validate_name
from mcpkeeper.state.paths import ensure_private_dir

__all__ = ["DEFAULT_LOCK_TIMEOUT", "LockTimeout", "Locks", "StateLock"]

DEFAULT_LOCK_TIMEOUT = 30.0
"""Long enough for a token refresh by another process (its HTTP timeout), short enough to surface a hang."""

_POLL_INTERVAL = 0.02


class LockTimeout(TimeoutError):
    """The lock stayed held by someone else for the whole timeout."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g}s waiting for lock {path} (held by another process?)")
        self.path = path
        self.timeout = timeout


class StateLock:
    """One named lock file. ``timeout`` None waits forever; 0 tries once."""

    def __init__(self, path: Path, *, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._lock = filelock.FileLock(str(path), mode=0o600, thread_local=False)

    @property
    def held(self) -> bool:
        """True while this handle holds the lock."""
        return self._lock.is_locked

    def acquire(self, timeout: float | None = None) -> None:
        """Block until held, or raise LockTimeout after ``timeout`` (default: the handle's)."""
        limit = self._effective(timeout)
        self._prepare()
        try:
            self._lock.acquire(timeout=-1 if limit is None else limit, poll_interval=_POLL_INTERVAL)
        except filelock.Timeout:
            raise LockTimeout(self.path, limit or 0.0) from None

    async def acquire_async(self, timeout: float | None = None) -> None:
        """Like :meth:`acquire`, polling without blocking the event loop; cancellable at any await."""
        limit = self._effective(timeout)
        self._prepare()
        deadline = None if limit is None else time.monotonic() + limit
        while not self._try_once():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise LockTimeout(self.path, limit or 0.0)
            await asyncio.sleep(_POLL_INTERVAL if remaining is None else min(_POLL_INTERVAL, remaining))

    def release(self) -> None:
        """Release the lock (a no-op when this handle does not hold it)."""
        if self._lock.is_locked:
            self._lock.release()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> Self:
        await self.acquire_async()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _effective(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    def _prepare(self) -> None:
        if self._lock.is_locked:
            raise RuntimeError(f"lock {self.path} is already held by this handle (locks are not reentrant)")
        ensure_private_dir(self.path.parent)

    def _try_once(self) -> bool:
        try:
            self._lock.acquire(blocking=False)
        except filelock.Timeout:
            return False
        return True

    def __repr__(self) -> str:
        return f"StateLock({str(self.path)!r}, held={self.held})"


class Locks:
    """The lock directory ``<root>/locks``; ``root`` is the state home."""

    def __init__(self, root: Path) -> None:
        self.directory = root / "locks"

    def path(self, name: str) -> Path:
        return self.directory / f"{validate_name(name)}.lock"

    def lock(self, name: str, *, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> StateLock:
        """A new handle on the lock ``name`` (a workload name, or any name in the same charset)."""
        return StateLock(self.path(name), timeout=timeout)
