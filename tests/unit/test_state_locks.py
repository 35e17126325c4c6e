"""StateLock within one process: exclusion between handles, timeouts, async polling, modes."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest

from mcpkeeper.state import Locks, LockTimeout


def test_lock_file_location_and_modes(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    with locks.lock("github") as held:
        assert held.held
        assert held.path == tmp_path / "locks" / "github.lock"
        assert stat.S_IMODE(os.stat(tmp_path / "locks").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(held.path).st_mode) == 0o600
    assert not held.held


def test_second_handle_times_out_then_succeeds(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    first = locks.lock("w")
    first.acquire()
    second = locks.lock("w")
    with pytest.raises(LockTimeout, match=r"timed out after 0\.05s waiting for lock .*w\.lock"):
        second.acquire(timeout=0.05)
    assert not second.held
    first.release()
    second.acquire(timeout=0)
    assert second.held
    second.release()


def test_locks_with_different_names_are_independent(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    with locks.lock("a"), locks.lock("b", timeout=0) as b:
        assert b.held


def test_handles_are_not_reentrant(tmp_path: Path) -> None:
    lock = Locks(tmp_path).lock("w")
    with lock, pytest.raises(RuntimeError, match="not reentrant"):
        lock.acquire(timeout=0)


def test_release_without_holding_is_a_no_op(tmp_path: Path) -> None:
    lock = Locks(tmp_path).lock("w")
    lock.release()
    assert not lock.held


def test_invalid_lock_names_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid workload name"):
        Locks(tmp_path).lock("../escape")


async def test_async_acquire_waits_without_blocking_the_loop(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    holder = locks.lock("w")
    await holder.acquire_async()
    waiter = locks.lock("w")
    acquired = asyncio.Event()

    async def wait_for_lock() -> None:
        async with waiter:
            acquired.set()

    task = asyncio.create_task(wait_for_lock())
    # The loop keeps running other work while the waiter polls (a blocking wait would freeze
    # these sleeps until the test timeout), and the waiter stays excluded meanwhile.
    for _ in range(20):
        await asyncio.sleep(0.005)
    assert not task.done() and not acquired.is_set()
    holder.release()
    await asyncio.wait_for(acquired.wait(), timeout=5)
    await asyncio.wait_for(task, timeout=5)
    assert not waiter.held


async def test_async_acquire_times_out(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    with locks.lock("w"):
        started = time.monotonic()
        with pytest.raises(LockTimeout):
            await locks.lock("w").acquire_async(timeout=0.1)
        assert time.monotonic() - started < 5  # bounded: it gave up, it did not hang


async def test_cancelled_async_acquire_does_not_hold_the_lock(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    holder = locks.lock("w")
    holder.acquire()
    waiter = locks.lock("w", timeout=None)
    task = asyncio.create_task(waiter.acquire_async())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    holder.release()
    assert not waiter.held
    other = locks.lock("w")
    other.acquire(timeout=0)  # nobody holds it
    other.release()
