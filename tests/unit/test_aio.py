"""mcpkeeper.aio: must-finish work outlives its callers and the process waits for it."""

from __future__ import annotations

import asyncio

import pytest

from mcpkeeper.aio import MustFinish, first_done, must_finish, owned_tasks
from mcpkeeper.net.loop import run


async def test_a_cancelled_caller_leaves_the_work_running_to_its_end() -> None:
    group = MustFinish()
    release = asyncio.Event()
    saved: list[str] = []

    async def refresh_and_save() -> str:
        await release.wait()
        saved.append("rotated")
        return "rotated"

    caller = asyncio.create_task(group.run(refresh_and_save()))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert group.running == 1 and saved == []
    release.set()
    assert await group.wait(timeout=5.0) == 0
    assert saved == ["rotated"] and group.running == 0


async def test_wait_is_bounded_and_says_what_is_left() -> None:
    group = MustFinish()
    never = asyncio.Event()
    task = group.start(never.wait())
    assert await group.wait(timeout=0.01) == 1
    task.cancel()
    assert await group.wait(timeout=5.0) == 0


def test_the_process_loop_waits_for_must_finish_work_before_it_closes() -> None:
    saved: list[int] = []

    async def save_after_a_few_turns() -> None:
        for _ in range(20):
            await asyncio.sleep(0)
        saved.append(1)

    async def main() -> str:
        must_finish.start(save_after_a_few_turns())
        return "main returned at once"

    assert run(main()) == "main returned at once"
    assert saved == [1]


async def test_first_done_cancels_the_rest() -> None:
    stop = asyncio.Event()
    never = asyncio.Event()
    stop.set()
    finished, cancelled = await first_done(stop.wait(), never.wait())
    assert finished is not None and finished.result() is True
    assert cancelled is None


async def test_owned_tasks_give_the_body_s_failure_as_itself_and_end_the_tasks() -> None:
    started = asyncio.Event()
    ended: list[str] = []

    async def follower() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("follower")

    with pytest.raises(OSError, match="address already in use"):
        async with owned_tasks() as owned:
            owned.create_task(follower())
            await started.wait()
            raise OSError("address already in use")
    assert ended == ["follower"]


async def test_owned_tasks_wait_for_their_tasks_on_a_clean_exit() -> None:
    done: list[int] = []

    async def short() -> None:
        await asyncio.sleep(0)
        done.append(1)

    async with owned_tasks() as owned:
        owned.create_task(short())
    assert done == [1]
