"""A scripted ``$BROWSER`` for the conformance run: open the URL and follow every redirect.

The suite's authorization endpoints approve at once and redirect to the client's
loopback callback, so following the redirects is the whole of a "user logging in". It
reads only the final page's status; it never prints a URL (the codes in them are secrets
until exchanged).
"""

from __future__ import annotations

import sys

import httpx

_TIMEOUT = 20.0
_MAX_REDIRECTS = 10


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: browser.py URL", file=sys.stderr)
        return 2
    try:
        with httpx.Client(follow_redirects=True, max_redirects=_MAX_REDIRECTS, timeout=_TIMEOUT) as http:
            answer = http.get(argv[1])
    except httpx.HTTPError as exc:
        print(f"browser: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0 if answer.status_code < 400 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
