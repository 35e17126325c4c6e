"""Small, defensive HTTP for discovery and registration.

Every document fetched while logging in comes from a server we have not trusted yet:
bodies are capped (a metadata document is a few KiB; 1 MiB is refused, not read), a
redirect is followed only within the same origin (a redirect elsewhere could lead the
flow to a server the user never named), and HTML where JSON was expected — a login
page, a WAF, a captive portal — is named as such instead of surfacing as a JSON error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from mcpkeeper.auth.login_errors import DiscoveryError, LoginError
from mcpkeeper.auth.netpolicy import same_origin

__all__ = ["MAX_BODY_BYTES", "HttpAnswer", "json_object", "request_capped"]

MAX_BODY_BYTES = 1 << 20
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_METHOD_PRESERVING = frozenset({307, 308})


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A response read (or deliberately not read) in full; ``url`` is after redirects."""

    url: str
    status_code: int
    headers: httpx.Headers
    body: bytes

    @property
    def content_type(self) -> str:
        return _media_type(self.headers)


async def request_capped(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    read_body: bool | Callable[[str], bool] = True,
    limit: int = MAX_BODY_BYTES,
    error: type[LoginError] = DiscoveryError,
) -> HttpAnswer:
    """Send one request, following same-origin redirects only, and read at most ``limit`` bytes.

    Network failures become ``error`` with a one-line reason. With ``read_body=False`` the
    body is never read (a probe of an endpoint that may answer with an endless event
    stream only needs the status and headers); a callable decides by the answer's media
    type (``"application/json"``).
    """
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            request = http.build_request(method, current, headers=headers, json=json_body)
            response = await http.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise error(f"cannot reach {what} at {current}: {_describe(exc)}") from None
        try:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                target = urljoin(current, response.headers["location"])
                if not same_origin(current, target):
                    raise error(f"refusing the redirect of {what} from {current} to another origin: {target}")
                if response.status_code not in _METHOD_PRESERVING:
                    method, json_body = "GET", None
                current = target
                continue
            wanted = read_body(_media_type(response.headers)) if callable(read_body) else read_body
            body = await _read_capped(response, limit, f"{what} at {current}", error) if wanted else b""
            return HttpAnswer(current, response.status_code, response.headers, body)
        except httpx.HTTPError as exc:
            raise error(f"reading {what} from {current} failed: {_describe(exc)}") from None
        finally:
            await response.aclose()
    raise error(f"too many redirects fetching {what} from {url}")


def json_object(answer: HttpAnswer, what: str, *, error: type[LoginError] = DiscoveryError) -> dict[str, Any]:
    """The body as a JSON object, or ``error`` naming what came instead."""
    if answer.content_type == "text/html" or answer.body.lstrip()[:1] == b"<":
        raise error(
            f"{what} at {answer.url} is an HTML page, not JSON (a login page, proxy or firewall in the way?)"
        )
    try:
        data = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        raise error(f"{what} at {answer.url} is not valid JSON") from None
    if not isinstance(data, dict):
        raise error(f"{what} at {answer.url} is JSON but not an object")
    return data


def _media_type(headers: httpx.Headers) -> str:
    value: str = headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


async def _read_capped(response: httpx.Response, limit: int, what: str, error: type[LoginError]) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise error(f"{what} is larger than {limit} bytes; refusing to read it")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise error(f"{what} is larger than {limit} bytes; refusing to read it")
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text and text[0] else type(exc).__name__
