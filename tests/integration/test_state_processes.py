"""State files and locks shared between real processes (daemon + CLI + foreground proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcpkeeper.state import Locks, LockTimeout, StatusStore, WorkloadStatus

pytestmark = pytest.mark.integration

_WRITER = """
import sys, time
from pathlib import Path
from mcpkeeper.state import StatusStore, WorkloadStatus
store = StatusStore(Path(sys.argv[1]), history_limit=20)
statuses = [WorkloadStatus.RUNNING, WorkloadStatus.AUTH_RETRYING, WorkloadStatus.UNAUTHENTICATED]
deadline = time.monotonic() + 60
i = 0
store.set("hammered", statuses[0], "write 0", pid=0)
print("ready", flush=True)
while time.monotonic() < deadline and not Path(sys.argv[2]).exists():
    i += 1
    store.set("hammered", statuses[i % 3], f"write {i} " + "x" * (i % 200), pid=i)
print("wrote", i, flush=True)
"""

_HOLDER = """
import sys
from pathlib import Path
from mcpkeeper.state import Locks
lock = Locks(Path(sys.argv[1])).lock("github")
lock.acquire(timeout=30)
print("locked", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""

_TRY_ONCE = """
import sys
from pathlib import Path
from mcpkeeper.state import Locks, LockTimeout
try:
    Locks(Path(sys.argv[1])).lock("github").acquire(timeout=0)
except LockTimeout:
    sys.exit(3)
"""

_VALID_STATUSES = {s.value for s in WorkloadStatus}


async def _spawn(script: str, *args: str, env_home: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "MCPKEEPER_HOME": str(env_home)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )


async def _expect_line(proc: asyncio.subprocess.Process, prefix: str) -> str:
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
    assert line.startswith(prefix), f"expected {prefix!r} from the child, got {line!r}"
    return line


async def _finish(proc: asyncio.subprocess.Process) -> int:
    try:
        return await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_reader_never_sees_a_torn_status_file(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    writer = await _spawn(_WRITER, str(tmp_path), str(stop), env_home=tmp_path)
    try:
        await _expect_line(writer, "ready")
        path = tmp_path / "statuses" / "hammered.json"
        reader = StatusStore(tmp_path, history_limit=20)
        seen_pids: set[int] = set()
        # Read until the reads have overlapped plenty of writes (a loaded disk makes the
        # writer's fsyncs slow), bounded in time and count.
        deadline = time.monotonic() + 15.0
        reads = 0
        while len(seen_pids) <= 25 and reads < 200_000 and time.monotonic() < deadline:
            raw = json.loads(path.read_bytes())  # a torn file would fail to parse here
            assert raw["status"] in _VALID_STATUSES
            assert raw["status_context"].startswith("write ")
            record = reader.get("hammered")
            assert record is not None and record.status != WorkloadStatus.UNKNOWN, record
            seen_pids.add(record.pid or 0)
            if reads % 50 == 0:
                history = reader.history("hammered")
                assert 0 < len(history) <= 20
            reads += 1
            await asyncio.sleep(0)
        stop.touch()
        wrote = int((await _expect_line(writer, "wrote")).split()[1])
        assert await _finish(writer) == 0
    finally:
        stop.touch()
        await _finish(writer)
    # The test only means something if the reads overlapped many writes.
    assert wrote > 20 and len(seen_pids) > 5, (wrote, len(seen_pids))
    leftovers = sorted(p.name for p in (tmp_path / "statuses").iterdir())
    assert leftovers == ["hammered.history.jsonl", "hammered.json"]  # no .corrupted, no temp files
    final = reader.history("hammered")
    assert len(final) == 20 and final[-1].status_context.startswith(f"write {wrote} ")


@contextlib.asynccontextmanager
async def _child_holding_the_lock(root: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """A child process holding lock ``github``, checked to be excluding this process."""
    holder = await _spawn(_HOLDER, str(root), env_home=root)
    try:
        await _expect_line(holder, "locked")
        with pytest.raises(LockTimeout):
            Locks(root).lock("github").acquire(timeout=0)
        yield holder
    finally:
        await _finish(holder)


async def test_lock_excludes_another_process_until_it_releases(tmp_path: Path) -> None:
    lock = Locks(tmp_path).lock("github")
    async with _child_holding_the_lock(tmp_path) as holder:
        with pytest.raises(LockTimeout):
            lock.acquire(timeout=0.2)
        with pytest.raises(LockTimeout):
            await lock.acquire_async(timeout=0.2)
        assert holder.stdin is not None
        holder.stdin.write(b"release\n")
        await holder.stdin.drain()
        await _expect_line(holder, "released")
        await lock.acquire_async(timeout=10)
        assert lock.held
        lock.release()
        assert await _finish(holder) == 0


async def test_lock_held_here_excludes_a_child_process(tmp_path: Path) -> None:
    lock = Locks(tmp_path).lock("github")
    with lock:
        blocked = await _spawn(_TRY_ONCE, str(tmp_path), env_home=tmp_path)
        assert await _finish(blocked) == 3
    free = await _spawn(_TRY_ONCE, str(tmp_path), env_home=tmp_path)
    assert await _finish(free) == 0


async def test_lock_of_a_killed_holder_is_released_by_the_os(tmp_path: Path) -> None:
    async with _child_holding_the_lock(tmp_path) as holder:
        holder.send_signal(signal.SIGKILL)
        await _finish(holder)
    lock = Locks(tmp_path).lock("github")
    await lock.acquire_async(timeout=10)  # no stale lock after a crash
    lock.release()
