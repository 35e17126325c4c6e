"""``mcpkeeper serve``: the daemon in the foreground (what the CLI otherwise starts in the background).

With ``--store redis://…`` it is a replica of a team gateway, and with ``--listen`` it
serves every workload through one authenticated listener (README, "Team gateway").
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcpkeeper.cli.errors import CliError, ExitCode

__all__ = ["serve"]

_FileOpt = typer.Option(exists=False, dir_okay=False)


def serve(
    store: Annotated[
        str | None,
        typer.Option(
            "--store", envvar="MCPKEEPER_STORE", help="State backend: file (default) or redis://HOST:PORT/DB."
        ),
    ] = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="Gateway listener HOST:PORT (routes /<workload>/…).")
    ] = None,
    allow: Annotated[
        Path | None, typer.Option("--allow", help="Allow-list JSON: workload -> callers.")
    ] = None,
    api_keys: Annotated[
        Path | None, typer.Option("--api-keys", help="Inbound API keys: 'CALLER KEY' lines.")
    ] = None,
    jwt_issuer: Annotated[
        str | None, typer.Option("--jwt-issuer", help="Accept JWTs of this issuer.")
    ] = None,
    jwt_audience: Annotated[
        str | None, typer.Option("--jwt-audience", help="Audience the JWTs must name.")
    ] = None,
    jwks_url: Annotated[
        str | None, typer.Option("--jwks-url", help="Default: <issuer>/.well-known/jwks.json.")
    ] = None,
    jwt_caller_claim: Annotated[
        str, typer.Option("--jwt-caller-claim", help="Claim naming the caller.")
    ] = "sub",
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM) of the listener.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="TLS private key (PEM).")] = None,
    behind_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-proxy", help="TLS ends at a proxy in front: allow a plain non-loopback listener."
        ),
    ] = False,
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            envvar="MCPKEEPER_API",
            metavar="127.0.0.1:PORT",
            help="Also serve the control API, /metrics and the dashboard on this loopback address "
            "(bearer token in <home>/secrets/api-token).",
        ),
    ] = None,
) -> None:
    """Run the daemon in the foreground: control API and every workload (Ctrl-C stops it)."""
    from mcpkeeper.daemon import main as daemon_main
    from mcpkeeper.gateway.listener import GatewayOptions, parse_listen

    gateway = None
    if listen is not None:
        try:
            host, port = parse_listen(listen)
        except ValueError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from None
        gateway = GatewayOptions(
            host=host,
            port=port,
            allow=allow,
            api_keys=api_keys,
            jwt_issuer=jwt_issuer,
            jwt_audience=jwt_audience,
            jwks_url=jwks_url,
            jwt_caller_claim=jwt_caller_claim,
            tls_cert=tls_cert,
            tls_key=tls_key,
            behind_proxy=behind_proxy,
        )
    elif any(v is not None for v in (allow, api_keys, jwt_issuer, tls_cert, tls_key)) or behind_proxy:
        raise CliError("gateway options need --listen HOST:PORT", ExitCode.USAGE)
    daemon_main(store_url=store, gateway=gateway, api_address=api)
