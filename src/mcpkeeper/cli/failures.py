"""Turning exceptions raised below the CLI into one line and an exit code.

Domain errors (login, daemon API, state) already carry messages written for the user;
we print those as they are. Anything else is a bug or an environment problem: we name
the exception type so a bug report is useful, and point at ``--debug``.
The domain modules are looked up in ``sys.modules`` rather than imported: an exception of
theirs implies they are loaded, and importing them up front would put ``mcpkeeper.auth``
(and with it httpx) on the start-up path of every command, ``list`` included.
"""

from __future__ import annotations

import errno
import sys

from mcpkeeper.cli.errors import CliError, ExitCode

__all__ = ["describe_failure", "error_line"]

_NOT_FOUND_STATUS = 404
#: An error line is one terminal line at most this long (paths and URLs included).
_ERROR_LIMIT = 1000


def error_line(message: str) -> str:
    """``error: <message>`` made safe for a terminal: one line, no escapes, no secrets.

    Messages carry server text (an issuer, a callback's ``error_description``, a token
    endpoint's answer): passed raw, ANSI escapes would let a server rewrite the user's
    terminal and a newline would forge a second line. :func:`mcpkeeper.sanitize.server_text`
    is the one sanitiser for such text.
    """
    from mcpkeeper.sanitize import server_text

    return f"error: {server_text(message, _ERROR_LIMIT)}"


def describe_failure(exc: BaseException) -> tuple[str, ExitCode]:
    """A one-line message and the exit code for ``exc``."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code
    login_error = _loaded_class("mcpkeeper.auth.login_errors", "LoginError")
    if login_error is not None and isinstance(exc, login_error):
        return f"login failed: {exc}", ExitCode.FAILURE
    daemon_error = _loaded_class("mcpkeeper.api.client", "DaemonError")
    if daemon_error is not None and isinstance(exc, daemon_error):
        return str(exc), _daemon_exit_code(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        detail = exc.strerror or str(exc)
        return (detail if "in use" in detail else f"port already in use ({detail})"), ExitCode.FAILURE
    http_error = _loaded_class("httpx", "TransportError")
    if http_error is not None and isinstance(exc, http_error):
        return f"network error: {exc or type(exc).__name__}", ExitCode.FAILURE
    detail = str(exc).splitlines()[0] if str(exc) else ""
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"unexpected {text} (rerun with --debug for the traceback)", ExitCode.FAILURE


def _daemon_exit_code(exc: BaseException) -> ExitCode:
    unavailable = _loaded_class("mcpkeeper.api.client", "DaemonUnavailableError")
    if unavailable is not None and isinstance(exc, unavailable):
        return ExitCode.DAEMON_UNAVAILABLE
    return ExitCode.NOT_FOUND if getattr(exc, "status", None) == _NOT_FOUND_STATUS else ExitCode.FAILURE


def _loaded_class(module: str, name: str) -> type[BaseException] | None:
    loaded = sys.modules.get(module)
    found = getattr(loaded, name, None) if loaded is not None else None
    return found if isinstance(found, type) and issubclass(found, BaseException) else None
