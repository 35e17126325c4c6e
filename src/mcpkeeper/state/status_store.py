"""Current status of every workload, one small JSON file each, plus its history.

Layout: ``<root>/statuses/<name>.json`` (0600, written atomically, directory 0700) and
``<root>/statuses/<name>.history.jsonl`` (see :mod:`.history`).

Every write replaces the whole file through a temp file + rename, so a reader in another
process (the CLI while the daemon writes) sees the old or the new status, never a torn
one. ``set`` is on the monitor's transition path and costs one small read, one atomic
write and, on a change, one append.

A status file that cannot be parsed is moved aside to ``<name>.json.corrupted[.N]`` and the
workload is reported as ``unknown`` with a reason naming the moved file; that ``unknown``
record is also written in its place (only if no other process wrote a status meanwhile),
so every later reader tells the same story until the workload's owner sets a new status.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    import asyncio

from mcpkeeper.sanitize import server_text
from mcpkeeper.state._atomic import atomic_write_json
from mcpkeeper.state._clock import utcnow
from mcpkeeper.state._model_file import load_model_file, write_model_file
from mcpkeeper.state._quarantine import CorruptFile
from mcpkeeper.state._schema import UtcDatetime, to_json
from mcpkeeper.state.history import DEFAULT_HISTORY_LIMIT, HistoryLog, Transition
from mcpkeeper.state.names import names_in, validate_name
from mcpkeeper.state.paths import ensure_private_dir
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["StatusRecord", "StatusStore", "StoreStatusSink"]

_log = logging.getLogger(__name__)

_SUFFIX = ".json"
_MAX_REASON = 500
_RETRY_INITIAL = 1.0
_RETRY_MAX = 60.0


class _StatusFile(msgspec.Struct, frozen=True, kw_only=True):
    """What is on disk. Unknown keys are ignored so a newer version's files stay readable."""

    status: WorkloadStatus
    status_context: str = ""
    created_at: UtcDatetime
    updated_at: UtcDatetime
    pid: int | None = None


class StatusRecord(_StatusFile, frozen=True, kw_only=True):
    """The current status of one workload, as the store returns it."""

    name: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: name, status, status_context, created_at/updated_at (ISO-8601 UTC), pid."""
        data: dict[str, Any] = to_json(self)
        return data


def status_change(
    previous: StatusRecord | None,
    name: str,
    status: WorkloadStatus | str,
    context: str,
    *,
    pid: int | None,
    now: datetime,
) -> tuple[StatusRecord, Transition | None]:
    """The record after setting ``status``, and the transition to append (None if none).

    The one rule of both stores: ``created_at`` survives every update, ``updated_at`` is
    now; a transition is recorded only when the status or the context changes, so
    repeating a status (a heartbeat, a pid change) never floods the history.
    """
    new_status = WorkloadStatus(status)
    record = StatusRecord(
        name=name,
        status=new_status,
        status_context=context,
        created_at=previous.created_at if previous else now,
        updated_at=now,
        pid=pid,
    )
    if previous is not None and (previous.status, previous.status_context) == (new_status, context):
        return record, None
    transition = Transition(
        status=new_status,
        status_context=context,
        previous_status=previous.status if previous else None,
        at=now,
        pid=pid,
    )
    return record, transition


class _StatusWriter(Protocol):
    def set(
        self, name: str, status: WorkloadStatus | str, context: str = "", *, pid: int | None = None
    ) -> StatusRecord: ...


class StoreStatusSink:
    """A ``StatusSink`` (see ``mcpkeeper.auth.protocols``) writing one workload's reports here.

    ``report`` writes synchronously, so reports land on disk in the order they were made.
    A failed write (disk full, directory removed) must neither break the token monitor
    that reports it nor leave a stale status on disk for good: the newest report is kept
    and written again with back-off (1 s doubling to a minute, on the running event loop)
    until the file is true again; a newer report supersedes it. Reasons pass through the
    one sanitiser (:func:`mcpkeeper.sanitize.server_text`): one line, no secrets.
    """

    def __init__(self, store: _StatusWriter, name: str, *, pid: int | None) -> None:
        self._store = store
        self.name = validate_name(name)
        self._pid = pid
        self._pending: tuple[WorkloadStatus, str] | None = None
        self._retry_delay = _RETRY_INITIAL
        self._retry: asyncio.TimerHandle | None = None  # asyncio only once a write failed

    @property
    def behind(self) -> bool:
        """A report could not be written yet (it is being retried)."""
        return self._pending is not None

    def report(self, status: WorkloadStatus, reason: str) -> None:
        self._pending = (status, server_text(reason, _MAX_REASON))
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._write_pending()

    def _write_pending(self) -> None:
        self._retry = None
        pending = self._pending
        if pending is None:
            return
        try:
            self._store.set(self.name, *pending, pid=self._pid)
        except OSError as exc:
            _log.error(
                "could not record status %s of workload %s (%s); trying again in %.0fs",
                pending[0],
                self.name,
                exc,
                self._retry_delay,
            )
            self._schedule_retry()
            return
        if self._retry_delay > _RETRY_INITIAL:
            _log.warning("status of workload %s recorded again after a write failure", self.name)
        self._pending = None
        self._retry_delay = _RETRY_INITIAL

    def _schedule_retry(self) -> None:
        import asyncio  # here: `list` reads statuses and must not pay for importing asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a CLI process): the next report tries again
        self._retry = loop.call_later(self._retry_delay, self._write_pending)
        self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX)


class StatusStore:
    """Status files under ``<root>/statuses``; ``root`` is the state home."""

    def __init__(
        self,
        root: Path,
        *,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.directory = root / "statuses"
        self._history = HistoryLog(self.directory, max_entries=history_limit)
        self._now = now

    def path(self, name: str) -> Path:
        return self.directory / f"{validate_name(name)}{_SUFFIX}"

    def get(self, name: str) -> StatusRecord | None:
        """The workload's status; None if it has none; ``unknown`` (with why) if the file was corrupt."""
        loaded = load_model_file(self.path(name), _StatusFile, name=name)
        if loaded is None:
            return None
        if isinstance(loaded, CorruptFile):
            return self._report_corrupt(loaded)
        return StatusRecord(name=name, **msgspec.structs.asdict(loaded))

    def set(
        self,
        name: str,
        status: WorkloadStatus | str,
        context: str = "",
        *,
        pid: int | None = None,
    ) -> StatusRecord:
        """Record ``status`` and return the stored record.

        ``created_at`` survives every update; ``updated_at`` is now. A transition is appended
        to the history only when the status or the context differs from the stored one, so
        repeating a status (a heartbeat, a pid change) never floods the history.
        Raises ValueError for an invalid name or status value.
        """
        path = self.path(name)
        record, transition = status_change(self.get(name), name, status, context, pid=pid, now=self._now())
        self._write(path, record)
        if transition is not None:
            self._history.append(name, transition)
        return record

    def list(self) -> list[StatusRecord]:
        """Every workload's status, sorted by name; corrupt files show as ``unknown``."""
        records: list[StatusRecord] = []
        for name in names_in(self.directory, _SUFFIX):
            record = self.get(name)
            if record is not None:
                records.append(record)
        return records

    def delete(self, name: str) -> None:
        """Forget the workload's status and history (idempotent). ``.corrupted`` files stay as evidence."""
        path = self.path(name)
        self._history.delete(name)
        path.unlink(missing_ok=True)

    def history(self, name: str, limit: int | None = None) -> builtins.list[Transition]:
        """The newest transitions (at most ``limit`` and the store's bound), oldest first."""
        return self._history.read(validate_name(name), limit)

    def sink(self, name: str, *, pid: int | None = None) -> StoreStatusSink:
        """A status sink for one workload; ``pid`` defaults to this process (the one hosting it)."""
        return StoreStatusSink(self, name, pid=os.getpid() if pid is None else pid)

    def _write(self, path: Path, record: StatusRecord) -> None:
        ensure_private_dir(self.directory)
        write_model_file(path, record)

    def _report_corrupt(self, corrupt: CorruptFile) -> StatusRecord:
        """Turn an unreadable status file into an ``unknown`` record, persisted when safe."""
        context = f"status file {corrupt.describe()}"
        record, transition = status_change(
            None, corrupt.name, WorkloadStatus.UNKNOWN, context, pid=None, now=self._now()
        )
        _log.warning("workload %s: %s", corrupt.name, context)
        if corrupt.moved_to is not None and _publish_if_absent(corrupt.path, record) and transition:
            self._history.append(corrupt.name, transition)
        return record


def _publish_if_absent(path: Path, record: StatusRecord) -> bool:
    """Write ``record`` at ``path`` unless a file appeared there meanwhile; True if written.

    The corrupt file is gone by now; if the workload's owner wrote a fresh status since,
    that status is newer and truer than our ``unknown`` and must not be overwritten. The
    record is written to a temp name and hard-linked into place, which fails rather than
    replaces when the name exists.
    """
    staging = path.with_name(f".{path.name}.{os.getpid()}.unknown")
    try:
        atomic_write_json(staging, to_json(record))
        os.link(staging, path)
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            staging.unlink()
    return True
