"""The CLI as people meet it: help, version, completion, global options anywhere, --no-browser."""

from __future__ import annotations

import json
import re
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from mcpkeeper import __version__
from mcpkeeper.cli._lazy import command_examples, command_specs
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from tests.integration.cli_support import CLI, FixtureProcess, cli_env, run_cli

pytestmark = pytest.mark.integration

#: Every command and subcommand, as typed.
COMMANDS = [
    *(name for name in command_specs if name not in ("client", "service")),
    "client list",
    "client setup",
    "client remove",
    "service install",
    "service uninstall",
    "service status",
]
_TYPE_PLACEHOLDER = re.compile(r"<(bool|str|int|float|list\[[^\]]*\]|path|dir|file)[^>]*>|\{[A-Z_]+\}")


def test_the_app_imports_every_command() -> None:
    import mcpkeeper.cli.app  # noqa: F401 - fills command_specs and command_examples

    assert {"client", "service", "logout", "version", "completion"} <= set(command_specs)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_help_has_an_example_and_no_type_placeholders(tmp_path: Path, command: str) -> None:
    done = run_cli(tmp_path, *command.split(), "--help")
    assert done.returncode == 0, done.stderr
    assert not _TYPE_PLACEHOLDER.search(done.stdout), done.stdout
    assert f"Example: {command_examples[command]}" in " ".join(done.stdout.split())


def test_bare_mcpkeeper_prints_help_without_an_error_line(tmp_path: Path) -> None:
    done = run_cli(tmp_path)
    assert done.returncode == 0
    assert "Usage: mcpkeeper" in done.stdout and "client" in done.stdout and "service" in done.stdout
    assert "error" not in done.stderr and done.stderr.strip() == ""


def test_version_flag_and_command(tmp_path: Path) -> None:
    for args in (["-V"], ["--version"], ["version"]):
        assert run_cli(tmp_path, *args).stdout.strip() == f"mcpkeeper {__version__}"
    report = json.loads(run_cli(tmp_path, "version", "-o", "json").stdout)
    assert report["version"] == __version__ and report["python"]


def test_home_and_debug_are_accepted_after_the_command_name(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    WorkloadStore(elsewhere).put(
        WorkloadConfig(name="there", remote_url="https://t.example.com/mcp", port=42001)
    )
    env = cli_env(tmp_path / "default")
    for args in (
        ["list", "--home", str(elsewhere)],
        ["list", f"--home={elsewhere}"],
        ["list", "--debug", "--home", str(elsewhere)],
    ):
        done = run_cli(tmp_path, *args, "-o", "json", env=env)
        assert done.returncode == 0, done.stderr
        assert [row["name"] for row in json.loads(done.stdout)] == ["there"]
    # A value that merely looks like the option is left alone after `--`.
    done = run_cli(tmp_path, "list", "--", "--home", str(elsewhere), env=env)
    assert done.returncode == 2


def test_completion_script_and_workload_names(tmp_path: Path) -> None:
    script = run_cli(tmp_path, "completion", "bash")
    assert script.returncode == 0 and "_MCPKEEPER_COMPLETE=complete_bash" in script.stdout
    for name in ("alpha", "beta"):
        WorkloadStore(tmp_path).put(
            WorkloadConfig(name=name, remote_url=f"https://{name}.example.com/mcp", port=42002)
        )

    def complete(words: str) -> list[str]:
        env = {
            **cli_env(tmp_path),
            "_MCPKEEPER_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run([*CLI], env=env, capture_output=True, text=True, timeout=30, check=False)
        return done.stdout.split()

    assert complete("mcpkeeper status a") == ["alpha"]
    assert complete("mcpkeeper rm ") == ["alpha", "beta"]
    assert "logout" in complete("mcpkeeper log")


def test_no_browser_does_not_say_a_browser_opens(tmp_path: Path) -> None:
    with closing(FixtureProcess()) as fixtures:
        env = {k: v for k, v in cli_env(tmp_path).items() if k != "BROWSER"}
        done = run_cli(
            tmp_path, "login", fixtures.mcp_url, "--name", "nb", "--no-browser", "--timeout", "1s", env=env
        )
    assert "Open this URL to log in:" in done.stderr
    assert "browser should open" not in done.stderr
    assert done.returncode != 0  # nobody approved within the second


def test_every_command_with_output_speaks_json(tmp_path: Path) -> None:
    """-o json wherever there is output: the option exists on each of them."""
    with_output = [c for c in COMMANDS if c not in ("connect", "serve", "completion")]
    missing = [c for c in with_output if "--format" not in run_cli(tmp_path, *c.split(), "--help").stdout]
    assert missing == []
