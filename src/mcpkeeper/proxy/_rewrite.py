"""Point URLs the upstream hands out for its own origin back at the local proxy.

Two places carry such URLs: a redirect's ``Location`` and the ``endpoint`` event of the
older HTTP+SSE transport (the GET stream's first event names the URL to POST messages
to). A client that followed the upstream's absolute URL would talk to the remote directly,
without our token, get a 401 and start an OAuth flow of its own; rewritten, it stays on
the proxy. URLs on any *other* origin are left alone (and get no token, architecture.md §7), and so
are relative ones, which already resolve against the local URL.

The SSE rewriter looks only at the head of the stream, up to the first event that carries
data, and then passes bytes through untouched, so a long-lived stream costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Origin", "UrlRewriter", "rewrite_endpoint_event"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class Origin:
    """``(scheme, host, port)`` with the default port filled in, compared case-insensitively."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin | None:
        """The origin of an absolute http(s) URL, or None for anything else."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        return cls(scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme])

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UrlRewriter:
    """Maps URLs on ``upstream`` to ``local_base`` (the local origin plus any mount prefix)."""

    upstream: Origin
    local_base: str
    mount_prefix: str = ""

    def rewrite(self, url: str) -> str:
        if url.startswith("/") and not url.startswith("//"):
            return self.mount_prefix + url if self.mount_prefix else url
        if Origin.of(url) != self.upstream:
            return url
        parts = urlsplit(url)
        rest = parts.path or "/"
        if parts.query:
            rest += "?" + parts.query
        if parts.fragment:
            rest += "#" + parts.fragment
        return self.local_base + rest


async def rewrite_endpoint_event(chunks: AsyncIterator[bytes], rewriter: UrlRewriter) -> AsyncIterator[bytes]:
    """Relay an SSE stream, rewriting the URL of a leading ``endpoint`` event.

    Bytes are held back only until the first event with data is complete (comments and
    keep-alives before it are relayed as they come); a head over 64 KiB without one is
    released unchanged.
    """
    head: bytes | None = b""
    async for chunk in chunks:
        if head is None:
            yield chunk
            continue
        head += chunk
        while head is not None:
            match = _EVENT_END.search(head)
            if match is None:
                if len(head) > _MAX_HEAD:
                    yield head
                    head = None
                break
            block, head = head[: match.end()], head[match.end() :]
            new_block, had_data = _rewrite_block(block, rewriter)
            yield new_block
            if had_data:
                if head:
                    yield head
                head = None
    if head:
        yield head


def _rewrite_block(block: bytes, rewriter: UrlRewriter) -> tuple[bytes, bool]:
    """One event block with its ``endpoint`` data rewritten, and whether it carried data."""
    lines = block.splitlines(keepends=True)
    fields = [_field(line) for line in lines]
    had_data = any(name == b"data" for name, _ in fields)
    if (b"event", b"endpoint") not in fields:
        return block, had_data
    out: list[bytes] = []
    for line, (name, value) in zip(lines, fields, strict=True):
        if name == b"data":
            ending = line[len(line.rstrip(b"\r\n")) :]
            new_url = rewriter.rewrite(value.decode("utf-8", "replace"))
            line = b"data: " + new_url.encode() + ending
        out.append(line)
    return b"".join(out), had_data


def _field(line: bytes) -> tuple[bytes, bytes]:
    """``(name, value)`` of an SSE line (WHATWG "interpret the line"); comments have no name."""
    line = line.rstrip(b"\r\n")
    if not line or line.startswith(b":"):
        return b"", b""
    name, sep, value = line.partition(b":")
    if sep and value.startswith(b" "):
        value = value[1:]
    return name, value
