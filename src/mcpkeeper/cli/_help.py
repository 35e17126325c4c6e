"""Help text people can read: value names instead of Python types, an example per command.

typer's help shows each parameter's Python type in angle brackets (``--all <bool>``,
``--scope <list[str]>``, ``URL <str>``) and wraps required arguments in braces in the
usage line (``{URL}``). A flag takes no value and an argument's name already says what it
is, so neither gets a type column here; an option taking a value shows a value name
(``--port PORT``, ``-o table|json``), as Unix tools do. :func:`tidy_help` applies that to
the parameters of a command typer has built, by switching each one to a subclass that
only changes how it is *displayed* (parsing is untouched).

This reaches into typer's parameter classes (``TyperOption``/``TyperArgument`` and their
``display_type_rich``/``_usage_display_name``); a parameter of another class is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from typer._click import Context, Parameter
from typer.core import TyperArgument, TyperOption

__all__ = ["tidy_help", "value_name"]


class _ReadableOption(TyperOption):
    def display_type_rich(self, ctx: Context) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or value_name(self)


class _ReadableArgument(TyperArgument):
    def display_type_rich(self, ctx: Context) -> str | None:
        return None  # the name column already shows the metavar (URL, NAME)

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


def tidy_help(params: Iterable[Parameter | None]) -> None:
    """Make each typer option and argument among ``params`` display as described above."""
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = _ReadableOption
        elif type(param) is TyperArgument:
            param.__class__ = _ReadableArgument


def value_name(option: TyperOption) -> str:
    """What an option's value is called in help: its choices, else the last word of its name."""
    annotation = option.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "|".join(str(member.value) for member in annotation)
    longest = max(option.opts, key=len)
    return longest.lstrip("-").rsplit("-", 1)[-1].upper()
