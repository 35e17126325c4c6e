"""One sanitiser for every text a server (or any other party we do not control) wrote.

Server text reaches many places: a status reason, the history, the control API, a log
line, the 503 body a client receives, the one-line error the CLI prints. Two things go
wrong with it when it is passed on raw:

* **Secrets.** A token endpoint that echoes the refresh token in ``error_description``
  would put the refresh token into ``statuses/*.json`` and into every client's reply.
  Every token value this process has seen is remembered (:func:`remember_secret`, called
  by :class:`~mcpkeeper.auth.token.Token` itself) and replaced wherever it appears, and
  anything shaped like a bearer token or a token field is blanked as a second line of
  defence.
* **Terminals and one-line promises.** ANSI escapes let a server rewrite the user's
  terminal; newlines break the one-line error and the ``list`` table; bidi overrides make
  text read differently from what it is. They are removed, whitespace is collapsed, and
  the length is bounded.

:func:`redact` does the first part only (log files keep their line structure);
:func:`server_text` does both. This module imports nothing of mcpkeeper: every layer may
use it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from urllib.parse import quote

__all__ = ["REDACTED", "forget_secrets", "redact", "remember_secret", "server_text"]

REDACTED = "[redacted]"

#: Values shorter than this are not remembered: redacting "abc" everywhere would garble
#: text and protect nothing (no real token is that short).
_MIN_SECRET_LENGTH = 8
#: How many secret values are remembered (least recently remembered forgotten first). A
#: workload rotating a 15 s token adds 2 values per refresh; the bound keeps the last hours.
_MAX_SECRETS = 1024
#: Default bound of one line of server text.
DEFAULT_LIMIT = 300

_SECRET_PATTERNS = (
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(
        r"(?i)([\"']?\b(?:access_token|refresh_token|id_token|client_secret|code_verifier|authorization"
        r"|client_assertion|device_code)\b[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"
    ),
)
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    r"|\x1b[@-_]?"  # two-byte escapes, or a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # C1 CSI
)
_SPACES = re.compile(r"\s+")
_TRAILING_WORD = re.compile(r"\S*$")

_lock = threading.Lock()  # tokens are made in the event loop, but also in worker threads of tests
#: Each remembered value -> the forms it is searched in (itself, and percent-encoded when
#: that differs). The forms are computed once here: ``redact`` runs for every log line and
#: every server text, and encoding 1024 values on each call cost ~1 ms a line.
_secrets: OrderedDict[str, tuple[str, ...]] = OrderedDict()
#: Every form of every remembered value, rebuilt on change (read without the lock).
_forms: tuple[str, ...] = ()


def remember_secret(value: str | None) -> None:
    """Redact ``value`` from every text sanitised from now on (bounded, most recent kept)."""
    global _forms
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            _secrets.move_to_end(value)
            return
        encoded = quote(value, safe="")
        _secrets[value] = (value,) if encoded == value else (value, encoded)
        while len(_secrets) > _MAX_SECRETS:
            _secrets.popitem(last=False)
        _forms = tuple(form for forms in _secrets.values() for form in forms)


def forget_secrets() -> None:
    """Forget every remembered value (tests)."""
    global _forms
    with _lock:
        _secrets.clear()
        _forms = ()


def redact(text: str) -> str:
    """``text`` with every remembered secret and anything token-shaped replaced."""
    for form in _forms:
        if form in text:
            text = text.replace(form, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def server_text(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` made safe to show anywhere: no secrets, no escapes, one line, ≤ ``limit`` chars.

    Redaction runs on the whole text first, so truncation can never leave half a secret.
    """
    raw = text if isinstance(text, str) else str(text)
    horizon = max(4096, 16 * limit)
    if len(raw) > horizon:
        # Huge bodies are not scanned whole; the cut drops the last, partial word so that
        # half a secret (which redaction could not recognise) never survives it.
        raw = _TRAILING_WORD.sub("", raw[:horizon])
    cleaned = _ANSI.sub(" ", redact(raw))
    cleaned = "".join(" " if _is_control(ch) else ch for ch in cleaned)
    cleaned = _SPACES.sub(" ", cleaned).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: max(0, limit - 1)].rstrip() + "…"
    return cleaned


def _is_control(ch: str) -> bool:
    # Not printable: C0/C1 controls (newlines, BEL, ESC…), format characters (bidi
    # overrides among them), line/paragraph separators, unassigned and private code points.
    # The other separators (a no-break space) are not printable either: they become spaces.
    return ch != " " and not ch.isprintable()
