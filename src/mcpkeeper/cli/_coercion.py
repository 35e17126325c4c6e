"""Converting command-line strings to ``str``, ``Path`` and enum parameters without pydantic.

typer converts every parameter value through a pydantic ``TypeAdapter`` that it builds
the first time the parameter is parsed — even for an option left out (``--home``). On
``mcpkeeper list`` that imported pydantic and built adapters only to turn ``"json"``
into an enum member: a third of the command's start-up. The simple types our commands
use are converted here instead, by typer's own pydantic-free helpers (so choices and
path checks behave and read as typer's); any other annotation keeps typer's adapter, and
so does a flag given anything but a bool (an environment variable's "yes").

This reaches into typer's parameter class (``_runtime_param``, the lazily built
converter) and ``typer._coercion``; :func:`use_light_coercion` leaves a parameter
alone when that shape is not what it expects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from typer._click import Context, Parameter
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam, build_runtime_param
from typer._param_types import coerce_cli_choice, coerce_cli_path
from typer.core import _TyperParameter

__all__ = ["use_light_coercion"]


def use_light_coercion(params: Iterable[Parameter | None]) -> None:
    """Give the str, Path, enum and flag parameters among ``params`` a converter without pydantic."""
    for param in params:
        if isinstance(param, _TyperParameter) and getattr(param, "_runtime_param", False) is None:
            light = _light_converter(param)
            if light is not None:
                param._runtime_param = light


def _light_converter(param: _TyperParameter) -> RuntimeParam | None:
    descriptor = param.type_descriptor
    info, annotation = descriptor.parameter_info, descriptor.annotation
    if info.parser is not None or descriptor.file_annotation is not None:
        return None
    if annotation is bool:
        return _FlagParam(info, annotation)
    if annotation is str:
        return _StrParam(info, annotation)
    if annotation is Path and info.path_type is None:
        return _PathParam(info, annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _EnumParam(info, annotation)
    return None


@dataclass(frozen=True)
class _FlagParam(RuntimeParam):
    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if isinstance(value, bool):
            return value
        return build_runtime_param(param.type_descriptor).coerce(value, param=param, ctx=ctx)


@dataclass(frozen=True)
class _StrParam(RuntimeParam):
    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class _PathParam(RuntimeParam):
    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        # Already a Path, typer's path check (exists, file_okay, resolve_path…) needs no adapter.
        path = value if isinstance(value, Path) else Path(value)
        return coerce_cli_path(path, self.parameter_info, path_type=Path, param=param, ctx=ctx)


@dataclass(frozen=True)
class _EnumParam(RuntimeParam):
    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        assert isinstance(self.annotation, type) and issubclass(self.annotation, Enum)
        try:
            return coerce_cli_choice(
                value,
                choices=tuple(self.annotation),
                case_sensitive=self.parameter_info.case_sensitive,
                ctx=ctx,
            )
        except ValueError as exc:
            raise BadParameter(str(exc), ctx=ctx, param=param) from None
