"""Which URLs discovery may use (architecture.md §7).

Metadata documents are written by the server we are asked to log in to, so every URL in
them is untrusted input. Two rules keep a hostile or compromised server from turning
mcpkeeper into a tool against the user's own machine or network:

* endpoints that carry credentials (authorization, token, registration) and the issuer
  must be HTTPS, unless they are on the loopback interface (local development and the
  fixture servers);
* a *public* server may not send us to a private-network or loopback address (SSRF into
  the LAN, the router, a cloud metadata service). A server that is itself private or
  loopback may point anywhere private: that is just a company network or a dev setup.

The decisions are pure functions over literal addresses (unit-tested directly); only
:class:`TargetPolicy` resolves host names.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from mcpkeeper.auth.login_errors import DiscoveryError, LoginError

__all__ = [
    "TargetPolicy",
    "address_is_private",
    "is_loopback_host",
    "require_secure_endpoint",
    "same_origin",
    "target_allowed",
    "url_origin",
]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Shared address space (RFC 6598, carrier-grade NAT) is not "global" but Python's
# ``is_private`` says False for it; list it explicitly.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


def address_is_private(address: str) -> bool:
    """True for any literal IP address that is not on the public internet.

    Loopback, RFC 1918, link-local (including the cloud metadata address 169.254.169.254),
    unique-local IPv6, CGNAT, unspecified, multicast and reserved ranges all count, and an
    IPv4 address wrapped in IPv6 (``::ffff:10.0.0.1``) is judged by the IPv4 inside.
    Raises ``ValueError`` for something that is not an IP address.
    """
    ip = _unwrap(ipaddress.ip_address(address.strip("[]").split("%", 1)[0]))
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED_ADDRESS_SPACE:
        return True
    return not ip.is_global or ip.is_multicast


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost`` (RFC 6761) or a literal loopback address."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return _unwrap(ipaddress.ip_address(name)).is_loopback
    except ValueError:
        return False


def target_allowed(*, remote_private: bool, target_private: bool) -> bool:
    """May discovery for a remote (public or not) use a target (public or not)?"""
    return remote_private or not target_private


def require_secure_endpoint(url: str, what: str, *, error: type[LoginError] = DiscoveryError) -> None:
    """Refuse ``url`` unless it is HTTPS, or HTTP on the loopback interface."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return
    if scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return
    if scheme == "http":
        raise error(f"refusing {what} {url}: it must use https (plain http is allowed only on loopback)")
    raise error(f"refusing {what} {url!r}: not an http(s) URL")


def url_origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    return url_origin(a) == url_origin(b)


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """The private-network rule for one remote, with the remote already classified."""

    remote_url: str
    remote_private: bool

    @classmethod
    async def for_remote(cls, remote_url: str) -> TargetPolicy:
        """Classify the remote by resolving its host (an unresolvable remote counts as public)."""
        host = urlsplit(remote_url).hostname or ""
        try:
            private = await host_is_private(host)
        except DiscoveryError:
            private = False  # the probe will fail with its own clear error
        return cls(remote_url, private)

    async def check(self, url: str, what: str) -> None:
        """Raise :class:`DiscoveryError` when ``url`` may not be used for this remote."""
        host = urlsplit(url).hostname
        if not host:
            raise DiscoveryError(f"refusing {what} {url!r}: no host name")
        if self.remote_private:
            return
        if not target_allowed(remote_private=False, target_private=await host_is_private(host)):
            raise DiscoveryError(
                f"refusing {what} {url}: the public server {url_origin(self.remote_url)[1]} "
                "points to a private-network address"
            )


async def host_is_private(host: str) -> bool:
    """True when ``host`` is a private/loopback literal or resolves to any such address."""
    name = host.strip("[]")
    if is_loopback_host(name):
        return True
    try:
        return address_is_private(name)
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DiscoveryError(f"cannot resolve host {name}: {exc.strerror or exc}") from None
    return any(address_is_private(str(info[4][0])) for info in infos)


def _unwrap(ip: _IPAddress) -> _IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
