"""vMCP settings from the environment, and the run file the CLI reads."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcpkeeper.vmcp.runfile import VMCPInfo, read_vmcp_info, vmcp_info_path, write_vmcp_info
from mcpkeeper.vmcp.settings import VMCPSettings


def test_defaults() -> None:
    settings = VMCPSettings.from_env({})
    assert settings.enabled and settings.port is None
    assert settings.call_timeout == 300.0 and settings.tools_max_age == 60.0


@pytest.mark.parametrize(
    ("raw", "enabled", "port"), [("8765", True, 8765), (" off ", False, None), ("", True, None)]
)
def test_port(raw: str, enabled: bool, port: int | None) -> None:
    settings = VMCPSettings.from_env({"MCPKEEPER_VMCP_PORT": raw})
    assert (settings.enabled, settings.port) == (enabled, port)


@pytest.mark.parametrize("raw", ["0", "65536", "eighty", "-1"])
def test_a_bad_port_is_logged_and_ignored(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = VMCPSettings.from_env({"MCPKEEPER_VMCP_PORT": raw})
    assert settings.enabled and settings.port is None
    assert "MCPKEEPER_VMCP_PORT" in caplog.text and "using the remembered or a free port" in caplog.text


def test_durations() -> None:
    env = {"MCPKEEPER_VMCP_CALL_TIMEOUT": "90s", "MCPKEEPER_VMCP_TOOLS_MAX_AGE": "5m"}
    settings = VMCPSettings.from_env(env)
    assert settings.call_timeout == 90.0 and settings.tools_max_age == 300.0


@pytest.mark.parametrize("raw", ["10", "soon", "0", "-5s"])
def test_a_bad_duration_keeps_the_default(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = VMCPSettings.from_env({"MCPKEEPER_VMCP_CALL_TIMEOUT": raw})
    assert settings.call_timeout == 300.0
    assert "MCPKEEPER_VMCP_CALL_TIMEOUT" in caplog.text


def test_run_file_round_trip_is_private(tmp_path: Path) -> None:
    info = VMCPInfo(url="http://127.0.0.1:8765/mcp", port=8765, pid=4242)
    write_vmcp_info(tmp_path, info)
    assert read_vmcp_info(tmp_path) == info
    assert os.stat(vmcp_info_path(tmp_path)).st_mode & 0o777 == 0o600
    assert json.loads(vmcp_info_path(tmp_path).read_text())["error"] is None


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", '{"url": 5, "port": "x", "pid": true}'])
def test_an_unreadable_run_file_reads_as_nothing_useful(tmp_path: Path, content: str) -> None:
    path = vmcp_info_path(tmp_path)
    path.parent.mkdir()
    path.write_text(content)
    info = read_vmcp_info(tmp_path)
    assert info is None or (info.url, info.port, info.pid) == (None, None, None)


def test_no_run_file(tmp_path: Path) -> None:
    assert read_vmcp_info(tmp_path) is None


def test_reading_the_run_file_imports_neither_the_mcp_sdk_nor_pydantic() -> None:
    # The CLI reads it on every `list`; that must stay fast.
    probe = (
        "import sys\n"
        "import mcpkeeper.vmcp.runfile\n"
        "heavy = ('mcp', 'httpx', 'httpx2', 'pydantic', 'starlette', 'asyncio')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=15, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
