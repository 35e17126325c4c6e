"""Where each client's config lives on Linux, macOS and Windows (pure path rules), and its entry."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from mcpkeeper.clientconfig.clients import (
    CLIENTS,
    TOKEN_INPUT_ID,
    Target,
    desired_entry,
    entry_target,
    spawn_command,
)
from mcpkeeper.clientconfig.locations import config_path, detection_paths

LINUX_HOME = PurePosixPath("/home/ann")
MAC_HOME = PurePosixPath("/Users/ann")
WIN_HOME = PureWindowsPath("C:/Users/ann")
WIN_ENV = {"APPDATA": r"C:\Users\ann\AppData\Roaming"}

EXPECTED = {
    "claude-desktop": (
        "/home/ann/.config/Claude/claude_desktop_config.json",
        "/Users/ann/Library/Application Support/Claude/claude_desktop_config.json",
        r"C:\Users\ann\AppData\Roaming\Claude\claude_desktop_config.json",
    ),
    "claude-code": ("/home/ann/.claude.json", "/Users/ann/.claude.json", r"C:\Users\ann\.claude.json"),
    "cursor": ("/home/ann/.cursor/mcp.json", "/Users/ann/.cursor/mcp.json", r"C:\Users\ann\.cursor\mcp.json"),
    "vscode": (
        "/home/ann/.config/Code/User/mcp.json",
        "/Users/ann/Library/Application Support/Code/User/mcp.json",
        r"C:\Users\ann\AppData\Roaming\Code\User\mcp.json",
    ),
    "vscode-workspace": (
        "/home/ann/proj/.vscode/mcp.json",
        "/Users/ann/proj/.vscode/mcp.json",
        r"C:\Users\ann\proj\.vscode\mcp.json",
    ),
    "windsurf": (
        "/home/ann/.codeium/windsurf/mcp_config.json",
        "/Users/ann/.codeium/windsurf/mcp_config.json",
        r"C:\Users\ann\.codeium\windsurf\mcp_config.json",
    ),
}


@pytest.mark.parametrize("client", sorted(EXPECTED))
def test_each_client_config_path_on_each_platform(client: str) -> None:
    linux, mac, windows = EXPECTED[client]
    assert str(config_path(client, system="linux", home=LINUX_HOME, env={}, cwd=LINUX_HOME / "proj")) == linux
    assert str(config_path(client, system="darwin", home=MAC_HOME, env={}, cwd=MAC_HOME / "proj")) == mac
    assert (
        str(config_path(client, system="win32", home=WIN_HOME, env=WIN_ENV, cwd=WIN_HOME / "proj")) == windows
    )


def test_the_platform_config_directory_follows_the_environment() -> None:
    xdg = {"XDG_CONFIG_HOME": "/srv/conf"}
    path = config_path("vscode", system="linux", home=LINUX_HOME, env=xdg, cwd=LINUX_HOME)
    assert str(path) == "/srv/conf/Code/User/mcp.json"
    relative = {"XDG_CONFIG_HOME": "conf"}  # not absolute: ignored, as the XDG spec says
    path = config_path("vscode", system="linux", home=LINUX_HOME, env=relative, cwd=LINUX_HOME)
    assert str(path) == "/home/ann/.config/Code/User/mcp.json"
    no_appdata = config_path("claude-desktop", system="win32", home=WIN_HOME, env={}, cwd=WIN_HOME)
    assert str(no_appdata) == r"C:\Users\ann\AppData\Roaming\Claude\claude_desktop_config.json"
    claude_dir = {"CLAUDE_CONFIG_DIR": "/opt/claude"}
    path = config_path("claude-code", system="linux", home=LINUX_HOME, env=claude_dir, cwd=LINUX_HOME)
    assert str(path) == "/opt/claude/.claude.json"


def test_detection_looks_at_the_config_directory() -> None:
    paths = detection_paths("cursor", system="linux", home=LINUX_HOME, env={}, cwd=LINUX_HOME)
    assert [str(p) for p in paths] == ["/home/ann/.cursor"]
    paths = detection_paths("claude-code", system="linux", home=LINUX_HOME, env={}, cwd=LINUX_HOME)
    assert [str(p) for p in paths] == ["/home/ann/.claude.json", "/home/ann/.claude"]


def test_unknown_client_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown client"):
        config_path("emacs", system="linux", home=LINUX_HOME, env={}, cwd=LINUX_HOME)


TARGET = Target("gh", "http://127.0.0.1:41234/mcp", ("/opt/mk/bin/mcpkeeper",))
SECURED = Target("gh", "http://127.0.0.1:41234/mcp", ("/usr/bin/python3", "-m", "mcpkeeper"), "tok" * 11)


def test_each_client_gets_its_own_entry_format() -> None:
    entries = {client: desired_entry(kind, TARGET) for client, kind in CLIENTS.items()}
    assert entries == {
        "claude-desktop": {"command": "/opt/mk/bin/mcpkeeper", "args": ["connect", "gh"]},
        "claude-code": {"type": "http", "url": TARGET.url},
        "cursor": {"url": TARGET.url},
        "vscode": {"type": "http", "url": TARGET.url},
        "vscode-workspace": {"type": "http", "url": TARGET.url},
        "windsurf": {"serverUrl": TARGET.url},
    }


def test_the_client_token_goes_in_a_header_but_never_into_a_workspace_file() -> None:
    bearer = {"Authorization": f"Bearer {SECURED.client_token}"}
    assert desired_entry(CLIENTS["cursor"], SECURED)["headers"] == bearer
    assert desired_entry(CLIENTS["windsurf"], SECURED)["headers"] == bearer
    workspace = desired_entry(CLIENTS["vscode-workspace"], SECURED)
    assert workspace["headers"] == {"Authorization": f"Bearer ${{input:{TOKEN_INPUT_ID}}}"}
    spawned = desired_entry(CLIENTS["claude-desktop"], SECURED)  # connect reads the token itself
    assert spawned == {"command": "/usr/bin/python3", "args": ["-m", "mcpkeeper", "connect", "gh"]}


def test_a_non_default_home_is_passed_to_the_spawned_command() -> None:
    target = Target("gh", TARGET.url, TARGET.command, env={"MCPKEEPER_HOME": "/data/mk"})
    assert desired_entry(CLIENTS["claude-desktop"], target)["env"] == {"MCPKEEPER_HOME": "/data/mk"}


def test_entries_through_mcpkeeper_are_recognised() -> None:
    urls = {TARGET.url: "gh"}
    assert entry_target({"url": TARGET.url}, urls) == ("workload", "gh")
    assert entry_target({"serverUrl": TARGET.url, "headers": {}}, urls) == ("workload", "gh")
    assert entry_target({"command": "/x/mcpkeeper", "args": ["connect", "gh"]}, urls) == ("workload", "gh")
    win = {"command": r"C:\py\python.exe", "args": ["-m", "mcpkeeper", "proxy", "https://r/mcp", "--stdio"]}
    assert entry_target(win, urls) == ("proxy", "https://r/mcp")
    remote = {"command": "npx", "args": ["-y", "mcp-remote@latest", "https://r/sse", "9696"]}
    assert entry_target(remote, urls) == ("mcp-remote", "https://r/sse")
    assert entry_target({"url": "http://127.0.0.1:9/mcp"}, urls) is None  # a port that is not ours
    assert entry_target({"command": "node", "args": ["server.js"]}, urls) is None
    assert entry_target("not an entry", urls) is None


def test_the_spawn_command_is_the_console_script_beside_the_interpreter(tmp_path: Path) -> None:
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    python = bindir / "python"
    python.write_text("")
    assert spawn_command(str(python)) == (str(python), "-m", "mcpkeeper")  # no script: python -m
    script = bindir / "mcpkeeper"
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert spawn_command(str(python)) == (str(script),)
    relative = os.path.relpath(python)
    assert spawn_command(relative) == (str(script),)  # always absolute
    assert spawn_command(str(python), system="win32") == (str(python), "-m", "mcpkeeper")  # needs .exe
