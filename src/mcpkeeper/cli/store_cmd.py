"""``mcpkeeper store keygen|push|rekey``: what an operator does with a gateway's shared store.

* ``keygen`` prints a new encryption key (for ``MCPKEEPER_STORE_KEY_FILE``);
* ``push NAME…`` copies workloads (config and stored login) from this machine's files
  into the shared store, as a new login each: log in where a browser is, push to the
  gateway, and every replica serves it within a poll interval;
* ``rekey`` re-seals every stored login with the current key (rotation: put the new key
  first in the key file, roll the replicas, run this, then drop the old key).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json

__all__ = ["store"]


def store(
    action: Annotated[str, typer.Argument(metavar="ACTION", help="keygen, push or rekey.")],
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME...", help="Workloads to push.")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--store", metavar="URL", envvar="MCPKEEPER_STORE", help="The shared store: redis://HOST:PORT/DB."
        ),
    ] = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Manage a gateway's shared store (keygen, push NAME..., rekey)."""
    if action == "keygen":
        from mcpkeeper.state.sealing import new_key

        _say({"key": new_key()}, output)
        return
    if action not in ("push", "rekey"):
        raise CliError(f"unknown action {action!r}: keygen, push or rekey", ExitCode.USAGE)
    if not url:
        raise CliError("give the shared store: --store redis://… (or MCPKEEPER_STORE)", ExitCode.USAGE)
    if action == "push" and not names:
        raise CliError("push which workloads? mcpkeeper store push NAME...", ExitCode.USAGE)
    _say({"action": action, "result": asyncio.run(_run(action, url, names or []))}, output)


def _say(facts: dict[str, str], output: OutputFormat) -> None:
    """The JSON object for scripts; for people, its last value (the key, or what was done)."""
    if output is OutputFormat.JSON:
        print_json(facts)
    else:
        print(list(facts.values())[-1])


async def _run(action: str, url: str, names: list[str]) -> str:
    from mcpkeeper.state.paths import state_home
    from mcpkeeper.state.store import FileStore, SharedStore, StoreURLError, open_store

    home = state_home()
    try:
        shared = open_store(url, home)
    except StoreURLError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    if not isinstance(shared, SharedStore):
        raise CliError("--store must name a shared store (redis://…)", ExitCode.USAGE)
    await shared.start()
    try:
        if action == "rekey":
            count = await shared.redis.rekey()
            return f"re-sealed {count} stored login(s) with key {shared.redis.keys.current}"
        local = FileStore(home)
        pushed = []
        for name in names:
            config = local.workloads.get(name)
            login = local.secrets.backend.read(name)
            if config is None and login is None:
                raise CliError(f"no workload {name!r} on this machine", ExitCode.NOT_FOUND)
            if login is not None:
                shared.secrets.backend.write(name, login)
            if config is not None:
                shared.workloads.put(config)
            pushed.append(name)
    finally:
        await shared.redis.aclose(flush_timeout=10.0)
    if shared.redis.unsent:
        raise CliError("the shared store did not take every write within 10 s; push again")
    return f"pushed {', '.join(pushed)} to the shared store"
