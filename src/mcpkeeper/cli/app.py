"""The ``mcpkeeper`` command: global options, command registration and the error boundary.

Start-up cost matters (``mcpkeeper list`` is typed often and scripted in loops), so this
module and every command module import only light things at module level; HTTP clients,
servers and the MCP SDK are imported inside the commands that use them.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

# The click that typer vendors; its exception types are how usage errors reach us.
from typer._click.exceptions import ClickException, UsageError

from mcpkeeper import __version__
from mcpkeeper.cli._lazy import LazyGroup, command_examples, command_specs
from mcpkeeper.cli.errors import CliError, ExitCode

__all__ = ["app", "main"]

app = typer.Typer(
    name="mcpkeeper",
    cls=LazyGroup,
    help="Keeps OAuth-protected remote MCP servers usable from MCP clients, through every transient outage.",
    epilog="Run 'mcpkeeper COMMAND --help' for a command's options and an example. "
    "--home and --debug may also follow the command name.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Settings:
    """Global flags, read by the error boundary after the command has run (or failed)."""

    debug = False


def _show_version(value: bool) -> None:
    if value:
        print(f"mcpkeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Verbose logs and full tracebacks on errors.")
    ] = False,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="MCPKEEPER_HOME",
            metavar="DIR",
            file_okay=False,
            help="State directory (workloads, statuses, secrets, logs).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keeps OAuth-protected remote MCP servers usable from MCP clients."""
    _Settings.debug = debug
    if home is not None:
        # Through the environment so that a daemon we spawn uses the same home.
        os.environ["MCPKEEPER_HOME"] = str(home.expanduser().resolve())
    if ctx.invoked_subcommand != "serve":  # the daemon sets up its own logging
        _configure_logging(debug)


def _configure_logging(debug: bool) -> None:
    """Errors to stderr; warnings would repeat what the commands already say. --debug shows all."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    if debug:
        root.setLevel(logging.DEBUG)


# Command name -> (module, function), imported when that command runs (see _lazy).
command_specs.update(
    {
        "run": ("mcpkeeper.cli.run_cmd", "run"),
        "list": ("mcpkeeper.cli.list_cmd", "list_workloads"),
        "status": ("mcpkeeper.cli.status_cmd", "status"),
        "login": ("mcpkeeper.cli.login_wrapper", "login"),
        "stop": ("mcpkeeper.cli.lifecycle_cmd", "stop"),
        "start": ("mcpkeeper.cli.lifecycle_cmd", "start"),
        "restart": ("mcpkeeper.cli.lifecycle_cmd", "restart"),
        "rm": ("mcpkeeper.cli.lifecycle_cmd", "remove"),
        "logs": ("mcpkeeper.cli.logs_cmd", "logs"),
        "connect": ("mcpkeeper.cli.connect_cmd", "connect"),
        "proxy": ("mcpkeeper.cli.proxy_cmd", "proxy"),
        "serve": ("mcpkeeper.cli.serve_cmd", "serve"),
        "store": ("mcpkeeper.cli.store_cmd", "store"),
        "shutdown": ("mcpkeeper.cli.lifecycle_cmd", "stop_daemon"),
        "logout": ("mcpkeeper.cli.logout_cmd", "logout"),
        "client": ("mcpkeeper.cli.client_cmd", "client_app"),
        "service": ("mcpkeeper.cli.service_cmd", "service_app"),
        "completion": ("mcpkeeper.cli.completion_cmd", "completion"),
        "version": ("mcpkeeper.cli.completion_cmd", "version"),
        "dashboard": ("mcpkeeper.cli.dashboard_cmd", "dashboard"),
    }
)

# One example per command, shown at the end of its help (see _lazy).
command_examples.update(
    {
        "run": "mcpkeeper run https://mcp.example.com/mcp",
        "list": "mcpkeeper list --all -o json",
        "status": "mcpkeeper status mcp.example.com",
        "login": "mcpkeeper login mcp.example.com",
        "logout": "mcpkeeper logout mcp.example.com",
        "stop": "mcpkeeper stop mcp.example.com",
        "start": "mcpkeeper start mcp.example.com",
        "restart": "mcpkeeper restart mcp.example.com",
        "rm": "mcpkeeper rm mcp.example.com",
        "logs": "mcpkeeper logs mcp.example.com -f -n 50",
        "connect": "mcpkeeper connect mcp.example.com",
        "proxy": "mcpkeeper proxy https://mcp.example.com/mcp --stdio",
        "serve": "mcpkeeper serve --debug",
        "shutdown": "mcpkeeper shutdown",
        "client": "mcpkeeper client setup mcp.example.com --client cursor --client claude-code",
        "client list": "mcpkeeper client list",
        "client setup": "mcpkeeper client setup mcp.example.com --client vscode --dry-run",
        "client remove": "mcpkeeper client remove mcp.example.com --client cursor",
        "service": "mcpkeeper service install",
        "service install": "mcpkeeper service install",
        "service uninstall": "mcpkeeper service uninstall",
        "service status": "mcpkeeper service status -o json",
        "completion": 'eval "$(mcpkeeper completion bash)"',
        "version": "mcpkeeper version -o json",
        "store": "mcpkeeper store push mcp.example.com --store redis://127.0.0.1:6379/0",
        "dashboard": "mcpkeeper dashboard --no-browser -o json",
    }
)

#: Global options also accepted after the command name (``mcpkeeper list --home DIR``).
_GLOBAL_WITH_VALUE = frozenset({"--home"})
_GLOBAL_FLAGS = frozenset({"--debug"})


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI and exit with its status."""
    sys.exit(run_cli(argv))


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit status; every failure becomes one stderr line."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    _Settings.debug = "--debug" in args  # until the callback has parsed it (usage errors come first)
    if not args:
        args = ["--help"]  # bare `mcpkeeper`: the help, as asked, and no error line
    command = typer.main.get_command(app)
    if "_MCPKEEPER_COMPLETE" in os.environ:  # a shell asking for completions (`mcpkeeper completion`)
        from typer._completion_classes import completion_init

        completion_init()
    try:
        result = command.main(args=args, prog_name="mcpkeeper", standalone_mode=False)
    except CliError as exc:
        return _fail(exc.message, exc.exit_code, exc)
    except UsageError as exc:
        return _fail(f"{exc.format_message()} (see 'mcpkeeper --help')", ExitCode.USAGE, exc)
    except ClickException as exc:
        return _fail(exc.format_message(), ExitCode(exc.exit_code or ExitCode.FAILURE), exc)
    except typer.Abort as exc:
        return _fail("aborted", ExitCode.FAILURE, exc)
    except Exception as exc:
        from mcpkeeper.cli.failures import describe_failure

        message, code = describe_failure(exc)
        return _fail(message, code, exc)
    return result if isinstance(result, int) else ExitCode.OK


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with ``--home DIR``/``--home=DIR``/``--debug`` moved before the command name.

    People type the global options where they think of them: ``mcpkeeper list --home X``.
    Only the command's own arguments are searched, up to a ``--`` that ends the options.
    """
    position = _command_position(args)
    if position is None:
        return args
    head, tail = args[: position + 1], args[position + 1 :]
    hoisted: list[str] = []
    kept: list[str] = []
    index = 0
    while index < len(tail):
        arg = tail[index]
        if arg == "--":
            kept.extend(tail[index:])
            break
        if arg in _GLOBAL_FLAGS or (arg.split("=", 1)[0] in _GLOBAL_WITH_VALUE and "=" in arg):
            hoisted.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and index + 1 < len(tail):
            hoisted.extend(tail[index : index + 2])
            index += 1
        else:
            kept.append(arg)
        index += 1
    return [*head[:position], *hoisted, head[position], *kept]


def _command_position(args: list[str]) -> int | None:
    """Index of the command name: the first word that is neither an option nor a global option's value."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _GLOBAL_WITH_VALUE:
            index += 2
            continue
        if not arg.startswith("-"):
            return index if arg in command_specs else None
        index += 1
    return None


def _fail(message: str, code: int, exc: BaseException) -> int:
    if _Settings.debug:
        traceback.print_exception(exc, file=sys.stderr)
    from mcpkeeper.cli.failures import error_line

    print(error_line(message), file=sys.stderr)
    return code
