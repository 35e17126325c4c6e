"""``mcpkeeper client setup|remove|list`` on real files in a temporary home, every client and platform."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcpkeeper.cli.client_cmd import run_setup
from mcpkeeper.cli.client_setup import Machine, plan_remove
from mcpkeeper.clientconfig.files import BACKUP_SUFFIX, write_edit
from mcpkeeper.clientconfig.jsonc import loads
from mcpkeeper.state.client_token import load_client_token
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from tests.integration.cli_support import assert_one_line_error, cli_env, run_cli

pytestmark = pytest.mark.integration

PORT = 41234
LOCAL_URL = f"http://127.0.0.1:{PORT}/mcp"

#: Where each rule puts each file, relative to the home (and the workspace, for vscode-workspace).
RELATIVE = {
    "linux": {
        "claude-desktop": ".config/Claude/claude_desktop_config.json",
        "vscode": ".config/Code/User/mcp.json",
    },
    "darwin": {
        "claude-desktop": "Library/Application Support/Claude/claude_desktop_config.json",
        "vscode": "Library/Application Support/Code/User/mcp.json",
    },
    "win32": {
        "claude-desktop": "AppData/Roaming/Claude/claude_desktop_config.json",
        "vscode": "AppData/Roaming/Code/User/mcp.json",
    },
}
SAME_EVERYWHERE = {
    "claude-code": ".claude.json",
    "cursor": ".cursor/mcp.json",
    "vscode-workspace": "proj/.vscode/mcp.json",
    "windsurf": ".codeium/windsurf/mcp_config.json",
}
ROOTS = {"vscode": "servers", "vscode-workspace": "servers"}


def _state(tmp_path: Path, *, client_auth: bool = False) -> Path:
    state = tmp_path / "state"
    WorkloadStore(state).put(
        WorkloadConfig(
            name="gh", remote_url="https://mcp.example.com/mcp", port=PORT, client_auth=client_auth
        )
    )
    return state


def _machine(tmp_path: Path, system: str) -> Machine:
    home = tmp_path / "home"
    env = {"APPDATA": str(home / "AppData" / "Roaming")} if system == "win32" else {}
    return Machine(system, home, env, home / "proj")


@pytest.mark.parametrize("system", ["linux", "darwin", "win32"])
@pytest.mark.parametrize(
    "client", ["claude-desktop", "claude-code", "cursor", "vscode", "vscode-workspace", "windsurf"]
)
def test_setup_writes_the_real_file_of_each_client_on_each_platform(
    tmp_path: Path, client: str, system: str
) -> None:
    state = _state(tmp_path)
    machine = _machine(tmp_path, system)
    path = machine.home / (RELATIVE[system].get(client) or SAME_EVERYWHERE[client])
    root = ROOTS.get(client, "mcpServers")
    mine = '{"command": "node", "args": ["s.js"]}'
    original = f'{{\n  // the user\'s own\n  "{root}": {{\n    "mine": {mine}\n  }}\n}}\n'
    path.parent.mkdir(parents=True)
    path.write_text(original)

    plans = run_setup(machine, state, "gh", [client])
    assert [plan.edit.action for plan in plans] == ["add"]
    document = loads(path.read_text())
    entry = document[root]["gh"]
    if client == "claude-desktop":
        assert os.path.isabs(entry["command"]) and entry["args"][-2:] == ["connect", "gh"]
    else:
        assert LOCAL_URL in entry.values()
    assert document[root]["mine"] == {"command": "node", "args": ["s.js"]}
    assert "// the user's own" in path.read_text()
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    assert backup.read_text() == original

    written = path.read_bytes(), path.stat().st_mtime_ns
    assert [plan.edit.action for plan in run_setup(machine, state, "gh", [client])] == ["unchanged"]
    assert (path.read_bytes(), path.stat().st_mtime_ns) == written

    for plan in plan_remove(machine, state, "gh", [client]):
        write_edit(plan.edit)
    assert path.read_text() == original  # back to the user's own file, byte for byte
    assert backup.read_text() == original  # the first backup is kept


def test_a_new_file_holding_the_client_token_is_private(tmp_path: Path) -> None:
    state = _state(tmp_path, client_auth=True)
    machine = _machine(tmp_path, "linux")
    cursor = machine.home / ".cursor" / "mcp.json"
    windsurf = machine.home / ".codeium" / "windsurf" / "mcp_config.json"
    windsurf.parent.mkdir(parents=True)
    windsurf.write_text("{}\n")
    windsurf.chmod(0o644)
    run_setup(machine, state, "gh", ["cursor", "windsurf", "vscode-workspace"])
    token = load_client_token(state)
    assert token is not None
    for path in (cursor, windsurf):
        assert token in path.read_text()
        assert path.stat().st_mode & 0o777 == 0o600
    workspace = (machine.cwd / ".vscode" / "mcp.json").read_text()
    assert token not in workspace and "${input:mcpkeeper-client-token}" in workspace
    assert loads(workspace)["inputs"][0]["password"] is True


# -- the real CLI ---------------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = cli_env(tmp_path / "state", {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": ""})
    env.pop("CLAUDE_CONFIG_DIR", None)
    env.pop("APPDATA", None)
    done = run_cli(tmp_path / "state", *args, env=env)
    return done.returncode, done.stdout, done.stderr


def test_cli_sets_up_the_installed_clients_and_keeps_claude_code_own_keys(tmp_path: Path) -> None:
    _state(tmp_path, client_auth=True)
    home = tmp_path / "home"
    (home / ".cursor").mkdir(parents=True)
    claude = home / ".claude.json"
    claude.write_text(
        json.dumps({"numStartups": 41, "projects": {"/p": {"mcpServers": {}}}}, indent=2) + "\n"
    )
    claude.chmod(0o644)

    code, out, err = _cli(tmp_path, "client", "setup", "gh", "--dry-run")
    assert code == 0, err
    token = load_client_token(tmp_path / "state")
    assert token is not None and token not in out and "<client token>" in out
    assert "+++ " in out and not (home / ".cursor" / "mcp.json").exists()  # nothing written

    code, out, err = _cli(tmp_path, "client", "setup", "gh", "-o", "json")
    assert code == 0, err
    assert {(row["client"], row["action"]) for row in json.loads(out)} == {
        ("claude-code", "add"),
        ("cursor", "add"),
    }
    document = json.loads(claude.read_text())
    assert document["numStartups"] == 41 and document["projects"] == {"/p": {"mcpServers": {}}}
    assert document["mcpServers"]["gh"] == {
        "type": "http",
        "url": LOCAL_URL,
        "headers": {"Authorization": f"Bearer {token}"},
    }
    assert claude.stat().st_mode & 0o777 == 0o600  # it holds the token now
    assert json.loads((home / ".cursor" / "mcp.json").read_text())["mcpServers"]["gh"]["url"] == LOCAL_URL

    code, out, _ = _cli(tmp_path, "client", "setup", "gh")
    assert code == 0 and out.count("already set up") == 2

    code, out, _ = _cli(tmp_path, "client", "list", "-o", "json")
    rows = {row["client"]: row for row in json.loads(out)}
    assert rows["cursor"]["installed"] and rows["cursor"]["servers"] == [
        {"server": "gh", "kind": "workload", "target": "gh"}
    ]
    assert not rows["windsurf"]["installed"]


def test_cli_refuses_to_replace_a_server_it_did_not_write(tmp_path: Path) -> None:
    _state(tmp_path)
    cursor = tmp_path / "home" / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    foreign = {
        "mcpServers": {"gh": {"command": "npx", "args": ["mcp-remote", "https://mcp.example.com/mcp"]}}
    }
    cursor.write_text(json.dumps(foreign))
    env = cli_env(tmp_path / "state", {"HOME": str(tmp_path / "home")})
    done = run_cli(tmp_path / "state", "client", "setup", "gh", "--client", "cursor", env=env)
    assert_one_line_error(done, code=1, contains="does not run through mcpkeeper; pass --force")
    assert json.loads(cursor.read_text()) == foreign

    code, out, _ = _cli(tmp_path, "client", "remove", "gh")  # every file: the foreign one is left alone
    assert code == 0 and "left gh in ~/.cursor/mcp.json alone" in out
    code, _, err = _cli(tmp_path, "client", "setup", "gh", "--client", "cursor", "--force")
    assert code == 0, err
    assert json.loads(cursor.read_text())["mcpServers"]["gh"] == {"url": LOCAL_URL}


def test_cli_writes_through_a_symlinked_config(tmp_path: Path) -> None:
    _state(tmp_path)
    dotfiles = tmp_path / "dotfiles" / "cursor-mcp.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text("{}\n")
    link = tmp_path / "home" / ".cursor" / "mcp.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(dotfiles)
    code, _, err = _cli(tmp_path, "client", "setup", "gh", "-c", "cursor")
    assert code == 0, err
    assert link.is_symlink()
    assert json.loads(dotfiles.read_text())["mcpServers"]["gh"] == {"url": LOCAL_URL}


def test_cli_setup_errors_are_one_line(tmp_path: Path) -> None:
    _state(tmp_path)
    env = cli_env(tmp_path / "state", {"HOME": str(tmp_path / "home")})
    done = run_cli(tmp_path / "state", "client", "setup", "gh", env=env)
    assert_one_line_error(done, code=2, contains="no supported MCP client found here")
    done = run_cli(tmp_path / "state", "client", "setup", "nope", "-c", "cursor", env=env)
    assert_one_line_error(done, code=3, contains="no daemon workload named 'nope'")
    broken = tmp_path / "home" / ".cursor" / "mcp.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"mcpServers": {,}}')
    done = run_cli(tmp_path / "state", "client", "setup", "gh", "-c", "cursor", env=env)
    assert_one_line_error(done, code=1, contains="is not valid JSON")
    assert broken.read_text() == '{"mcpServers": {,}}'
