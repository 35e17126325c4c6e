"""``python -m mcpkeeper.testing serve``: the fixture AS and MCP server in one process.

Prints the addresses (with ``--json``: exactly one JSON line on stdout, flushed) and
serves until SIGTERM or SIGINT. A control port steers the servers from outside (see
:mod:`mcpkeeper.testing.control`). Used by CLI subprocess tests and ``make demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence

from mcpkeeper.testing._serve import serve_asgi
from mcpkeeper.testing.auth_server import FixtureAuthServer
from mcpkeeper.testing.control import create_control_app
from mcpkeeper.testing.mcp_server import FixtureMCPServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mcpkeeper.testing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fixture authorization server and MCP server")
    serve.add_argument("--token-lifetime", type=_positive_float, default=3600.0, metavar="SECONDS")
    serve.add_argument(
        "--refresh-reuse-grace",
        action="store_true",
        help="accept a spent refresh token until the one it was rotated to has been used",
    )
    serve.add_argument("--json", action="store_true", help="print one JSON line with the URLs")
    serve.add_argument("--auth-port", type=int, default=0, help="default: any free port")
    serve.add_argument("--mcp-port", type=int, default=0, help="default: any free port")
    serve.add_argument("--control-port", type=int, default=0, help="default: any free port")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with (
        FixtureAuthServer(
            access_token_lifetime=args.token_lifetime,
            port=args.auth_port,
            refresh_reuse_grace=args.refresh_reuse_grace,
        ) as auth,
        FixtureMCPServer(auth, port=args.mcp_port) as mcp,
        serve_asgi(create_control_app(auth, mcp), port=args.control_port, lifespan="off") as control,
    ):
        info = {
            "issuer": auth.issuer,
            "mcp_url": mcp.url,
            "control_url": control.url,
            "token_endpoint": auth.token_endpoint,
            "authorization_endpoint": auth.authorization_endpoint,
            "registration_endpoint": auth.registration_endpoint,
            "resource_metadata_url": mcp.resource_metadata_url,
            "pid": os.getpid(),
        }
        if args.json:
            sys.stdout.write(json.dumps(info) + "\n")
        else:
            sys.stdout.write("".join(f"{key:<24}{value}\n" for key, value in info.items()))
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except OSError as exc:  # e.g. a requested port already in use
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
