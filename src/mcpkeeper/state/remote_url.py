"""The one rule for a remote MCP server's URL, wherever it comes in (CLI, control API, files).

A remote URL is printed (``list``, ``status``, log lines), turned into the local URL, and
sent requests with the user's token. So it must be one plain line, and it must not carry
credentials of its own:

* **control characters** (CR/LF, ESC...) and spaces: a URL with a newline printed a broken
  ``list`` row and made a local URL ending in ``…/mcpX: y``;
* **userinfo** (``http://user:pass@host``): the password was shown in ``list`` and
  ``status`` and sent as Basic authentication during discovery. Logins go through OAuth;
* **malformed** URLs (``http://[::1:47001/mcp``, a port out of range) and absurd lengths
  (a 100 kB "URL") are refused with a message, not an exception from deep inside.

The CLI (usage error, exit 2), the control API (400) and :class:`~.workload_store.WorkloadConfig`
(a config file breaking the rule is unreadable) all call :func:`check_remote_url`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MAX_URL_LENGTH", "InvalidRemoteUrlError", "check_remote_url", "is_valid_remote_url"]

MAX_URL_LENGTH = 2048
_SHOWN = 60  # an invalid URL is quoted in the message, cut to one short line
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


class InvalidRemoteUrlError(ValueError):
    """The URL breaks the rule; the message says how, in one line."""


def check_remote_url(url: str) -> str:
    """Return ``url`` unchanged if it is acceptable as a remote MCP server URL, else raise."""
    if not isinstance(url, str):
        raise InvalidRemoteUrlError("the remote URL must be a string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRemoteUrlError(
            f"the remote URL is {len(url)} characters long (at most {MAX_URL_LENGTH})"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise InvalidRemoteUrlError(f"the remote URL {_shown(url)} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise InvalidRemoteUrlError(f"the remote URL {_shown(url)} is malformed ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRemoteUrlError(f"not an http(s) URL with a host: {_shown(url)}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidRemoteUrlError(
            "the remote URL must not contain a user name or password (user:pass@host); "
            "mcpkeeper logs in with OAuth"
        )
    return url


def is_valid_remote_url(url: object) -> bool:
    """Whether :func:`check_remote_url` accepts ``url``."""
    try:
        check_remote_url(url)  # type: ignore[arg-type]
    except InvalidRemoteUrlError:
        return False
    return True


def _shown(url: str) -> str:
    """``url`` safe to quote in a one-line message: no userinfo, escapes visible, length bounded."""
    text = _USERINFO.sub(r"\1…@", url)
    text = text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
    return repr(text)
