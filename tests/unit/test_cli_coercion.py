"""cli._coercion: simple parameters parse as typer parses them, without building pydantic adapters."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer

from mcpkeeper.cli import _coercion
from mcpkeeper.cli._lazy import _build_command
from mcpkeeper.cli.app import app, run_cli
from mcpkeeper.cli.errors import ExitCode


@pytest.fixture(autouse=True)
def _isolated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """run_cli sets MCPKEEPER_HOME (--home) and adds a root log handler: undo both."""
    monkeypatch.setenv("MCPKEEPER_HOME", str(tmp_path / "home"))
    handlers = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = handlers


def _converter_kinds(command: Any) -> dict[str, str]:
    return {p.name: type(p._runtime_param).__module__ for p in command.params}


def test_list_and_status_parameters_use_the_light_converters() -> None:
    group = typer.main.get_command(app)
    assert _converter_kinds(group) == {
        "debug": _coercion.__name__,
        "home": _coercion.__name__,
        "version": _coercion.__name__,
    }
    for name in ("list", "status"):
        kinds = _converter_kinds(group.commands[name])  # type: ignore[attr-defined]
        assert set(kinds.values()) == {_coercion.__name__}, kinds


def test_other_types_keep_typers_converter() -> None:
    def command(tail: Annotated[int | None, typer.Option("--tail", min=0)] = None) -> None:
        """An int with bounds: not ours to convert."""

    built = _build_command("x", command)
    assert [p._runtime_param for p in built.params] == [None]  # type: ignore[attr-defined]


def test_enum_path_and_flag_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--home", str(tmp_path), "list", "--all", "-o", "json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "-o", "xml"], "Invalid value for '--format' / '-o': 'xml' is not one of 'table', 'json'."),
        (["--home", "{file}", "list"], "dir '{file}' is a file."),
    ],
)
def test_bad_values_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    file = tmp_path / "plain-file"
    file.write_text("")
    assert run_cli([a.replace("{file}", str(file)) for a in args]) == ExitCode.USAGE
    assert message.replace("{file}", str(file)) in capsys.readouterr().err


def test_a_flag_given_a_string_still_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment variable gives a flag "yes", not a bool: typer's own converter handles it."""
    seen: list[bool] = []

    def command(flag: Annotated[bool, typer.Option("--flag", envvar="MCPKEEPER_TEST_FLAG")] = False) -> None:
        seen.append(flag)

    monkeypatch.setenv("MCPKEEPER_TEST_FLAG", "yes")
    _build_command("x", command).main(args=[], standalone_mode=False)
    assert seen == [True]
