"""Commands whose modules are imported only when that command runs.

typer builds every command from its function, so a plain app imports every command
module (and what they import) before running any of them. ``mcpkeeper list`` must start
fast, so the group below holds a table of "command name -> module:function" and builds
a command the first time it is looked up: running ``list`` imports ``list_cmd`` only,
while ``--help`` (which lists them all) imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import typer

# The click that typer vendors: the type of the command objects typer builds.
from typer._click import Command, Context
from typer.core import TyperCommand, TyperGroup, TyperOption

from mcpkeeper.cli._coercion import use_light_coercion
from mcpkeeper.cli._help import tidy_help

__all__ = ["LazyGroup", "LightCommand", "LightGroup", "command_examples", "command_specs"]

#: name -> (module, function); filled by the app before it runs.
command_specs: dict[str, tuple[str, str]] = {}
#: name -> example command lines (one per line), shown at the end of the command's help.
command_examples: dict[str, str] = {}


class _CommandTable(MutableMapping[str, Command]):
    """A dict of commands whose values are built on first access from ``command_specs``."""

    def __init__(self, build: Callable[[str, Any], Command]) -> None:
        self._build = build
        self._built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            module, function = command_specs[name]  # KeyError: no such command
            self._built[name] = self._build(name, getattr(importlib.import_module(module), function))
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*command_specs, *self._built]))

    def __len__(self) -> int:
        return len(set(command_specs) | set(self._built))


class _LightParams(Command):
    """Simple parameters (and the help flag, made per context) converted without pydantic (``_coercion``)."""

    def __init__(self, *args: Any, **attrs: Any) -> None:
        super().__init__(*args, **attrs)
        use_light_coercion(self.params)
        tidy_help(self.params)

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        use_light_coercion([option])
        tidy_help([option])
        return option


class LazyGroup(_LightParams, TyperGroup):
    """The ``mcpkeeper`` group: subcommands come from :data:`command_specs`, built on demand."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _CommandTable(_build_command)


class LightCommand(_LightParams, TyperCommand):
    """One subcommand, as typer builds it, with the light parameter conversion and tidy help."""


class LightGroup(_LightParams, TyperGroup):
    """A group of subcommands (``client``, ``service``) with the same, for ``typer.Typer(cls=...)``."""


def _build_command(name: str, target: Callable[..., Any] | typer.Typer) -> Command:
    """A command from a function, or a group from a typer app (``client setup``, ``service install``)."""
    if isinstance(target, typer.Typer):
        return _polished(typer.main.get_command(target), name)
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name, cls=LightCommand, epilog=_epilog(name))(target)
    return typer.main.get_command(single)


def _polished(command: Command, path: str) -> Command:
    """A group typer built, given what our own commands get: light conversion, tidy help, examples."""
    command.name = path.rsplit(" ", 1)[-1]
    use_light_coercion(command.params)
    tidy_help(command.params)
    command.epilog = command.epilog or _epilog(path)
    for name, sub in getattr(command, "commands", {}).items():
        _polished(sub, f"{path} {name}")
    return command


def _epilog(name: str) -> str | None:
    """The examples, one paragraph each (rich help keeps paragraphs, joins lines)."""
    lines = command_examples.get(name, "").strip().splitlines()
    if not lines:
        return None
    return "\n\n".join(f"Example: {line.strip()}" for line in lines)
