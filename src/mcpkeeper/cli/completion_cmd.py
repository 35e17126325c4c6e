"""``mcpkeeper completion SHELL`` and ``mcpkeeper version``: small facts about the CLI itself.

Completion: the script printed here makes the shell call ``mcpkeeper`` back with
``_MCPKEEPER_COMPLETE`` set; the CLI's entry point (typer) answers with the commands,
options, and (for NAME arguments) the workload names found in the state directory.
The scripts and the shells' protocol are typer's (``typer._completion_shared`` and
``_completion_classes``, which its public ``typer.completion`` uses without exporting).
"""

from __future__ import annotations

import platform
import sys
from enum import StrEnum
from typing import Annotated

import typer

from mcpkeeper import __version__
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json

__all__ = ["COMPLETE_VAR", "Shell", "completion", "version"]

#: The environment variable the completion scripts set when they call us back.
COMPLETE_VAR = "_MCPKEEPER_COMPLETE"


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"
    POWERSHELL = "powershell"


def completion(
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh, fish or powershell.")],
) -> None:
    """Print the shell completion script: commands, options and workload names.

    Load it in the current shell with eval "$(mcpkeeper completion bash)" (zsh: the same
    with zsh), or save it where your shell reads completions, e.g.
    mcpkeeper completion fish > ~/.config/fish/completions/mcpkeeper.fish.
    """
    from typer._completion_shared import get_completion_script

    sys.stdout.write(get_completion_script(prog_name="mcpkeeper", complete_var=COMPLETE_VAR, shell=shell))
    sys.stdout.write("\n")


def version(output: FormatOpt = OutputFormat.TABLE) -> None:
    """Print the version of mcpkeeper (and, with -o json, of Python and the platform)."""
    if output is OutputFormat.JSON:
        print_json(
            {
                "version": __version__,
                "python": platform.python_version(),
                "platform": sys.platform,
                "executable": sys.executable,
            }
        )
    else:
        print(f"mcpkeeper {__version__}")
