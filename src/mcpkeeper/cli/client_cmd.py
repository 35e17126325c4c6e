"""``mcpkeeper client list|setup|remove``: a workload in the MCP clients' own config files.

``setup`` writes each client's real config file (see :mod:`mcpkeeper.clientconfig`):
the local URL for the clients that speak HTTP, ``mcpkeeper connect NAME`` by absolute
path for Claude Desktop. Without ``--client`` it picks the clients installed here. It is
idempotent (a second run changes nothing), ``--dry-run`` shows the diff without
writing, and a server of the same name that mcpkeeper did not write is left alone
unless ``--force``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from mcpkeeper.cli._lazy import LightCommand, LightGroup
from mcpkeeper.cli._options import WorkloadNameArg, checked_name
from mcpkeeper.cli.client_setup import (
    ClientPlan,
    Machine,
    installed_clients,
    plan_remove,
    plan_setup,
    scan_clients,
    target_for,
)
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.clientconfig.clients import CLIENTS
from mcpkeeper.clientconfig.files import ConfigFileError, home_relative, write_edit
from mcpkeeper.state.paths import state_home

__all__ = ["ClientId", "client_app", "print_plans", "run_setup"]


class ClientId(StrEnum):
    CLAUDE_DESKTOP = "claude-desktop"
    CLAUDE_CODE = "claude-code"
    CURSOR = "cursor"
    VSCODE = "vscode"
    VSCODE_WORKSPACE = "vscode-workspace"
    WINDSURF = "windsurf"


client_app = typer.Typer(
    cls=LightGroup,
    help="Register workloads with MCP clients (Claude Desktop, Claude Code, Cursor, VS Code, Windsurf).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ClientOpt = Annotated[
    list[ClientId] | None,
    typer.Option(
        "--client",
        "-c",
        metavar="CLIENT",
        help="A client to configure (repeatable): claude-desktop, claude-code, cursor, vscode, "
        "vscode-workspace, windsurf. Default: every one installed here.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the changes as a diff; write nothing.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace (or remove) a server of that name mcpkeeper did not write.")
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        metavar="DIR",
        file_okay=False,
        help="The folder whose .vscode/mcp.json vscode-workspace means (default: the current one).",
    ),
]


@client_app.command("list", cls=LightCommand)
def list_clients(output: FormatOpt = OutputFormat.TABLE, workspace: WorkspaceOpt = None) -> None:
    """Show each supported client: installed or not, its config file, the workloads it reaches."""
    machine = Machine.current(workspace)
    rows = scan_clients(machine, state_home())
    if output is OutputFormat.JSON:
        print_json(rows)
        return
    for row in rows:
        state = "installed" if row["installed"] else "not found"
        print(
            f"{row['label']} ({row['client']}): {state}, {home_relative(Path(row['config']), machine.home)}"
        )
        if row.get("error"):
            print(f"  error: {row['error']}")
        for server in row["servers"]:
            print(f"  {server['server']}: {_describe(server)}")


@client_app.command("setup", cls=LightCommand)
def setup(
    name: WorkloadNameArg,
    clients: ClientOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Add a workload to MCP clients' config files (idempotent; --dry-run shows the diff)."""
    machine = Machine.current(workspace)
    chosen = _chosen(machine, clients, setting_up=True)
    plans = run_setup(machine, state_home(), checked_name(name), chosen, dry_run=dry_run, force=force)
    _report(plans, machine, dry_run=dry_run, output=output, name=name)


@client_app.command("remove", cls=LightCommand)
def remove(
    name: WorkloadNameArg,
    clients: ClientOpt = None,
    dry_run: DryRunOpt = False,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Take a workload out of MCP clients' config files (every client that has it, by default)."""
    machine = Machine.current(workspace)
    chosen = _chosen(machine, clients, setting_up=False)
    plans = plan_remove(machine, state_home(), checked_name(name), chosen, force=force, strict=bool(clients))
    _apply(plans, dry_run)
    _report(plans, machine, dry_run=dry_run, output=output, name=name)


def run_setup(
    machine: Machine, home: Path, name: str, clients: list[str], *, dry_run: bool = False, force: bool = False
) -> list[ClientPlan]:
    """Plan (and unless ``dry_run``, write) the entries of workload ``name`` for ``clients``."""
    plans = plan_setup(machine, home, target_for(home, name), clients, force=force)
    _apply(plans, dry_run)
    return plans


def print_plans(plans: list[ClientPlan], machine: Machine, *, dry_run: bool, name: str) -> None:
    """One line per client (and the diff of each change, for a dry run)."""
    verbs = {
        "add": ("would add", "added"),
        "update": ("would update", "updated"),
        "remove": ("would remove", "removed"),
    }
    for plan in plans:
        where = home_relative(plan.edit.path, machine.home)
        action = plan.edit.action
        if action in verbs:
            verb = verbs[action][0 if dry_run else 1]
            preposition = "from" if action == "remove" else "in"
            print(f"{plan.kind.label}: {verb} {name} {preposition} {where}")
            if dry_run:
                sys.stdout.write(plan.edit.diff(plan.secrets))
        elif action == "unchanged":
            print(f"{plan.kind.label}: {name} already set up in {where}")
        elif action == "kept":
            print(f"{plan.kind.label}: left {name} in {where} alone (not mcpkeeper's; --force removes it)")
        else:
            print(f"{plan.kind.label}: no {name} in {where}")


def _chosen(machine: Machine, clients: list[ClientId] | None, *, setting_up: bool) -> list[str]:
    if clients:
        return list(dict.fromkeys(client.value for client in clients))
    if not setting_up:  # remove: from every config file there is
        return [kind.id for kind in CLIENTS.values() if machine.config_path(kind.id).exists()]
    found = installed_clients(machine)
    if not found:
        raise CliError(
            "no supported MCP client found here; name one with --client (e.g. --client cursor)",
            ExitCode.USAGE,
        )
    return found


def _apply(plans: list[ClientPlan], dry_run: bool) -> None:
    if dry_run:
        return
    for plan in plans:
        try:
            write_edit(plan.edit)
        except ConfigFileError as exc:
            raise CliError(str(exc)) from None


def _report(
    plans: list[ClientPlan], machine: Machine, *, dry_run: bool, output: OutputFormat, name: str
) -> None:
    if output is OutputFormat.JSON:
        print_json([_plan_json(plan, dry_run) for plan in plans])
        return
    print_plans(plans, machine, dry_run=dry_run, name=name)
    changed = [plan.kind.label for plan in plans if plan.edit.changes]
    if changed and not dry_run:
        print(f"Restart (or reload the MCP servers of) {', '.join(changed)} to pick up the change.")


def _plan_json(plan: ClientPlan, dry_run: bool) -> dict[str, Any]:
    return {
        "client": plan.kind.id,
        "config": str(plan.edit.path),
        "action": plan.edit.action,
        "changed": plan.edit.changes and not dry_run,
        "dry_run": dry_run,
    }


def _describe(server: dict[str, str]) -> str:
    if server["kind"] == "workload":
        return f"workload {server['target']}"
    if server["kind"] == "proxy":
        return f"mcpkeeper proxy {server['target']}"
    return f"mcp-remote {server['target']} (replace with: mcpkeeper proxy {server['target']} --stdio)"
