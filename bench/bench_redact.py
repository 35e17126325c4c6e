"""Cost of redacting one log line while the sanitiser remembers N secrets.

``redact`` runs for every log line the daemon writes and every server text it shows;
a workload rotating a 15 s token remembers 2 values per refresh, up to the bound (1024).
Printed side by side: the former way (percent-encoding every remembered value on each
call) and the current one (forms computed once, when a value is remembered).

Usage: python bench/bench_redact.py [--secrets N] [--lines N]
"""

from __future__ import annotations

import argparse
import secrets
import time
from urllib.parse import quote

from mcpkeeper import sanitize

_LINE = "refresh for github: attempt 3 failed (connect error: [Errno 111] Connection refused); next in 1.5s"


def _former(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, sanitize.REDACTED)
        encoded = quote(value, safe="")
        if encoded != value and encoded in text:
            text = text.replace(encoded, sanitize.REDACTED)
    return text


def _per_line_us(fn: object, lines: int) -> float:
    assert callable(fn)
    started = time.perf_counter()
    for _ in range(lines):
        fn()
    return (time.perf_counter() - started) / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=1024)
    parser.add_argument("--lines", type=int, default=2000)
    args = parser.parse_args()
    values = [secrets.token_urlsafe(32) for _ in range(args.secrets)]
    sanitize.forget_secrets()
    for value in values:
        sanitize.remember_secret(value)
    assert sanitize.redact(f"x {values[-1]} y") == f"x {sanitize.REDACTED} y"
    former = _per_line_us(lambda: _former(_LINE, values), args.lines)
    current = _per_line_us(lambda: sanitize.redact(_LINE), args.lines)
    print(f"redact one log line, {args.secrets} secrets remembered, {args.lines} lines")
    print(f"  former (encode on each call): {former:8.1f} us/line")
    print(f"  current (forms precomputed):  {current:8.1f} us/line   ({former / current:.1f}x faster)")


if __name__ == "__main__":
    main()
