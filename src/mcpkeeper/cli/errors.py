"""How the CLI fails: one clear line on stderr and an exit code a script can test.

Every command raises :class:`CliError` (or lets a known domain error through) instead of
printing and exiting itself, so the wording, the stream and the exit code are decided in
one place, and ``--debug`` is the only way to see a traceback.
"""

from __future__ import annotations

from enum import IntEnum

from mcpkeeper.exit_status import EXIT_ALREADY_RUNNING

__all__ = ["CliError", "ExitCode"]


class ExitCode(IntEnum):
    """Exit statuses, part of the CLI's scripting contract (``make demo`` and users' scripts)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    DAEMON_UNAVAILABLE = 4
    ALREADY_RUNNING = EXIT_ALREADY_RUNNING
    """``serve`` when another daemon owns the home (:mod:`mcpkeeper.exit_status`)."""
    INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can act on; ``message`` is the whole story, in one line."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
