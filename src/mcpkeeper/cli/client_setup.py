"""Registering a workload with the user's MCP clients: which clients, which entry, which file.

The commands (``mcpkeeper client …``) and ``run``'s offer at the end both come here. A
workload's entry is built from its stored config (:func:`target_for`), planned for each
client (:func:`plan_setup`, :func:`plan_remove`) and then written, or only shown
(``--dry-run``). Only daemon workloads qualify: their local port is fixed for good,
whereas a foreground ``mcpkeeper proxy`` picks a new one each run.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.clientconfig.clients import (
    CLIENTS,
    ClientKind,
    Target,
    desired_entry,
    entry_target,
    spawn_command,
    token_input,
)
from mcpkeeper.clientconfig.files import (
    ConfigFileError,
    Edit,
    plan_entry,
    plan_removal,
    read_config,
    servers_in,
)
from mcpkeeper.clientconfig.locations import config_path, detection_paths
from mcpkeeper.state.client_token import client_token_path, ensure_client_token
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadStore
from mcpkeeper.workloads.client_auth import client_auth_required
from mcpkeeper.workloads.info import local_url

__all__ = [
    "ClientPlan",
    "Machine",
    "installed_clients",
    "plan_remove",
    "plan_setup",
    "scan_clients",
    "target_for",
]


@dataclass(frozen=True, slots=True)
class Machine:
    """Where client configs live here: the platform rules' inputs (tests pass their own)."""

    system: str
    home: Path
    env: Mapping[str, str]
    cwd: Path

    @classmethod
    def current(cls, workspace: Path | None = None) -> Machine:
        return cls(sys.platform, Path.home(), dict(os.environ), (workspace or Path.cwd()).absolute())

    def config_path(self, client: str) -> Path:
        return config_path(client, system=self.system, home=self.home, env=self.env, cwd=self.cwd)

    def installed(self, client: str) -> bool:
        if client == "claude-code" and shutil.which("claude", path=self.env.get("PATH")):
            return True
        paths = detection_paths(client, system=self.system, home=self.home, env=self.env, cwd=self.cwd)
        return any(path.exists() for path in paths)


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """One client's planned change, with what the commands print about it."""

    kind: ClientKind
    edit: Edit
    #: Values to mask when the change is shown (the client token).
    secrets: tuple[str, ...] = ()


def installed_clients(machine: Machine) -> list[str]:
    """The clients set up by default: those installed here (never the workspace file)."""
    return [kind.id for kind in CLIENTS.values() if not kind.explicit_only and machine.installed(kind.id)]


def target_for(home: Path, name: str, *, command: Sequence[str] | None = None) -> Target:
    """What clients must point at for workload ``name`` (a daemon workload)."""
    try:
        config = WorkloadStore(home).get(name)
    except CorruptStateError as exc:
        raise CliError(str(exc)) from None
    if config is None:
        raise CliError(
            f"no daemon workload named {name!r} (see 'mcpkeeper list'); clients need one started by "
            "'mcpkeeper run', whose local port stays the same",
            ExitCode.NOT_FOUND,
        )
    url = local_url(config.remote_url, config.port)
    if url is None:
        raise CliError(f"workload {name!r} has no local port yet; run 'mcpkeeper start {name}' first")
    token = ensure_client_token(home) if client_auth_required(config.client_auth) else None
    default_home = state_home({})
    env = {} if _same_path(home, default_home) else {"MCPKEEPER_HOME": str(home)}
    return Target(name, url, tuple(command or spawn_command()), token, env)


def plan_setup(
    machine: Machine, home: Path, target: Target, clients: Sequence[str], *, force: bool = False
) -> list[ClientPlan]:
    """The change each of ``clients`` needs to reach ``target`` (unchanged ones included)."""
    ours = _recogniser(home)
    secrets = (target.client_token,) if target.client_token else ()
    plans = []
    for client in clients:
        kind = CLIENTS[client]
        inputs = [token_input(client_token_path(home))] if kind.explicit_only and secrets else []
        path = machine.config_path(client)
        try:
            entry = desired_entry(kind, target)
            edit = plan_entry(
                path,
                kind.root,
                target.name,
                entry,
                ours=ours,
                force=force,
                inputs=inputs,
                secret=target.client_token,
            )
        except ConfigFileError as exc:
            raise CliError(str(exc)) from None
        plans.append(ClientPlan(kind, edit, secrets))
    return plans


def plan_remove(
    machine: Machine,
    home: Path,
    name: str,
    clients: Sequence[str],
    *,
    force: bool = False,
    strict: bool = True,
) -> list[ClientPlan]:
    """The change that takes workload ``name`` out of each of ``clients`` (see ``plan_removal``)."""
    ours = _recogniser(home)
    plans = []
    for client in clients:
        kind = CLIENTS[client]
        try:
            path = machine.config_path(client)
            edit = plan_removal(path, kind.root, name, ours=ours, force=force, strict=strict)
        except ConfigFileError as exc:
            raise CliError(str(exc)) from None
        plans.append(ClientPlan(kind, edit))
    return plans


def scan_clients(machine: Machine, home: Path) -> list[dict[str, Any]]:
    """Every supported client: installed or not, its config file, and the servers there that use mcpkeeper."""
    local_urls = _local_urls(home)
    rows = []
    for kind in CLIENTS.values():
        path = machine.config_path(kind.id)
        row: dict[str, Any] = {
            "client": kind.id,
            "label": kind.label,
            "installed": machine.installed(kind.id),
            "config": str(path),
            "exists": path.exists(),
            "servers": [],
        }
        try:
            servers = servers_in(read_config(path), kind.root, path)
        except ConfigFileError as exc:
            row["error"] = str(exc)
            servers = {}
        for server, entry in servers.items():
            found = entry_target(entry, local_urls)
            if found is not None:
                row["servers"].append({"server": server, "kind": found[0], "target": found[1]})
        rows.append(row)
    return rows


def _recogniser(home: Path) -> Callable[[object], bool]:
    """Whether an entry is mcpkeeper's to replace: it reaches a workload or a ``proxy`` through us."""
    local_urls = _local_urls(home)

    def ours(entry: object) -> bool:
        found = entry_target(entry, local_urls)
        return found is not None and found[0] != "mcp-remote"

    return ours


def _local_urls(home: Path) -> dict[str, str]:
    """Local URL -> workload name, for every daemon workload (to recognise our entries)."""
    urls = {}
    for config in WorkloadStore(home).list():
        url = local_url(config.remote_url, config.port)
        if url is not None:
            urls[url] = config.name
    return urls


def _same_path(a: Path, b: Path) -> bool:
    return os.path.abspath(a.expanduser()) == os.path.abspath(b.expanduser())
