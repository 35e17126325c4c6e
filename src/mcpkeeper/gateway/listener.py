"""``serve --listen HOST:PORT``: the gateway's one listener, and the rules for opening it.

The rules, checked before anything binds (a clear one-line error otherwise):

* the gateway always authenticates its callers: ``--api-keys FILE`` or ``--jwt-issuer``
  with ``--jwt-audience`` (:mod:`.inbound`), plus the allow-list ``--allow FILE``
  (:mod:`.access`);
* a listener on anything but loopback also needs TLS (``--tls-cert`` and ``--tls-key``)
  or an explicit ``--behind-proxy`` (a load balancer or ingress that terminates TLS in
  front of it): credentials and MCP traffic never cross a network in clear by default.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp

from mcpkeeper.gateway.access import AllowList
from mcpkeeper.gateway.inbound import ApiKeys, Authenticator, InboundConfigError, JwtSettings, JwtVerifier
from mcpkeeper.net import InLoopServer, bind_tcp

__all__ = ["GatewayOptions", "open_listener", "parse_listen"]


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    host: str
    port: int
    allow: Path | None = None
    api_keys: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwks_url: str | None = None
    jwt_caller_claim: str = "sub"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_proxy: bool = False

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def check(self) -> tuple[Authenticator, AllowList]:
        """The authenticator and allow-list these options name; :class:`InboundConfigError` if unusable."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InboundConfigError("--tls-cert and --tls-key go together")
        if not self.loopback and self.tls_cert is None and not self.behind_proxy:
            raise InboundConfigError(
                f"--listen {self.host}:{self.port} is not loopback: give --tls-cert/--tls-key, or "
                "--behind-proxy when a load balancer terminates TLS in front of the gateway"
            )
        if self.allow is None:
            raise InboundConfigError("the gateway needs an allow-list (--allow FILE: workload -> callers)")
        authenticator: Authenticator
        if self.api_keys is not None and self.jwt_issuer is not None:
            raise InboundConfigError("choose one inbound authentication: --api-keys or --jwt-issuer")
        if self.api_keys is not None:
            authenticator = ApiKeys.from_file(self.api_keys)
        elif self.jwt_issuer is not None:
            if not self.jwt_audience:
                raise InboundConfigError(
                    "--jwt-issuer needs --jwt-audience (the audience our callers' tokens name)"
                )
            issuer = self.jwt_issuer.rstrip("/")
            authenticator = JwtVerifier(
                JwtSettings(
                    issuer=self.jwt_issuer,
                    audience=self.jwt_audience,
                    jwks_url=self.jwks_url or f"{issuer}/.well-known/jwks.json",
                    caller_claim=self.jwt_caller_claim,
                )
            )
        else:
            raise InboundConfigError(
                "the gateway authenticates every caller: give --api-keys FILE or --jwt-issuer URL"
            )
        return authenticator, AllowList.from_file(self.allow)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` is refused: IPv4 only for now); ValueError with a clear message."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT, e.g. 0.0.0.0:8443")
    return host, int(port)


def open_listener(options: GatewayOptions, app: ASGIApp) -> InLoopServer:
    """Bind the gateway's socket now (a busy port fails here) and wrap it in a server to start."""
    sock = bind_tcp(options.host, options.port)
    return InLoopServer(
        app,
        sock,
        name="gateway",
        lifespan="off",
        ssl_certfile=str(options.tls_cert) if options.tls_cert is not None else None,
        ssl_keyfile=str(options.tls_key) if options.tls_key is not None else None,
    )
