"""One log file per workload, and no token in any of them.

Every workload lives in the same process and loop, and the auth, proxy and uvicorn
code that logs for it knows nothing of workloads. So the routing is done by context:
a workload's tasks run with :data:`_current_workload` set (tasks inherit the context
they were created in, and so do the connection handlers of its server), and one
handler on the root logger sends each record to the file of the workload it was
emitted for.

Each file rotates by size and counts repeated lines instead of writing them
(:mod:`.log_limits`). A record written to a workload's file is INFO-and-below chatter of
that workload; :func:`written_to_workload_file` lets the daemon keep it out of
``daemon.log``, which then holds the daemon's own lines and every warning.

Our own code never formats a token into a message; :class:`TokenRedactingFilter` is
the second line of defence for text we do not control (a library echoing a header or
a form body): every token value the process has seen, and anything token-shaped, is
blanked by :func:`mcpkeeper.sanitize.redact`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from mcpkeeper.sanitize import redact
from mcpkeeper.state.paths import ensure_private_dir
from mcpkeeper.workloads.log_limits import BACKUPS, RotatingLogFile

__all__ = [
    "TokenRedactingFilter",
    "WorkloadLogRouter",
    "current_workload",
    "remove_workload_logs",
    "workload_context",
    "workload_log_file",
    "written_to_workload_file",
]

_current_workload: ContextVar[str | None] = ContextVar("mcpkeeper_workload", default=None)

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TokenRedactingFilter(logging.Filter):
    """Blanks token-shaped text out of a record's message and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def current_workload() -> str | None:
    return _current_workload.get()


@contextlib.contextmanager
def workload_context(name: str) -> Iterator[None]:
    """Tasks created inside the block (and their children) log to ``name``'s file."""
    token = _current_workload.set(name)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # reset from another context: nothing to undo
            _current_workload.reset(token)


class WorkloadLogRouter(logging.Handler):
    """Root-logger handler sending each record to its workload's file, if it has one open."""

    _installed: WorkloadLogRouter | None = None

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._files: dict[str, logging.Handler] = {}
        # Redacted in emit, once a record is known to be written: every INFO record of the
        # process passes through this handler, and most go to no workload file.
        self._redact = TokenRedactingFilter()

    @classmethod
    def install(cls) -> WorkloadLogRouter:
        """The process-wide router, attached to the root logger on first use."""
        if cls._installed is None:
            cls._installed = cls()
            logging.getLogger().addHandler(cls._installed)
            package = logging.getLogger("mcpkeeper")
            if package.level == logging.NOTSET or package.level > logging.INFO:
                package.setLevel(logging.INFO)
        return cls._installed

    def open_file(self, name: str, path: Path) -> None:
        if name in self._files:
            return
        ensure_private_dir(path.parent)
        handler = RotatingLogFile(path)
        handler.setFormatter(logging.Formatter(_FORMAT))
        self._files[name] = handler

    def close_file(self, name: str) -> None:
        handler = self._files.pop(name, None)
        if handler is not None:
            handler.close()

    def has_file(self, name: str | None) -> bool:
        return name is not None and name in self._files

    def emit(self, record: logging.LogRecord) -> None:
        name = _current_workload.get()
        handler = self._files.get(name) if name is not None else None
        if handler is not None:
            self._redact.filter(record)
            handler.handle(record)


def written_to_workload_file(record: logging.LogRecord) -> bool:
    """Whether ``record`` (being emitted now) goes to a workload's own log file."""
    router = WorkloadLogRouter._installed
    return router is not None and record.levelno >= router.level and router.has_file(_current_workload.get())


def workload_log_file(home: Path, name: str) -> Path:
    return home / "logs" / f"{name}.log"


def remove_workload_logs(home: Path, name: str) -> None:
    """Delete a workload's log and its rotated copies (``rm``: nothing of it is left behind)."""
    base = workload_log_file(home, name)
    for path in (base, *(base.with_name(f"{base.name}.{index}") for index in range(1, BACKUPS + 1))):
        path.unlink(missing_ok=True)
