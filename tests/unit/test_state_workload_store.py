"""WorkloadStore / WorkloadConfig: round trip, validation, modes, corruption."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from mcpkeeper.state import CorruptStateError, WorkloadConfig, WorkloadStore
from mcpkeeper.state._schema import SchemaError, decode


def _config(name: str = "github", **overrides: object) -> WorkloadConfig:
    fields: dict[str, object] = {"name": name, "remote_url": "https://mcp.example.com/mcp"}
    fields.update(overrides)
    return decode(json.dumps(fields), WorkloadConfig)  # as a file is read


def test_defaults() -> None:
    config = _config()
    assert config.transport == "streamable-http"
    assert config.desired_state == "running"
    assert config.port is None and config.callback_port is None
    assert config.scopes == []
    assert config.created_at.tzinfo is not None
    assert config.auth is True


def test_put_get_round_trip(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    config = _config(
        port=8123,
        transport="sse",
        callback_port=8765,
        scopes=["read", "write"],
        resource="https://mcp.example.com",
        issuer="https://auth.example.com",
        client_id="abc",
        desired_state="stopped",
        auth=False,
    )
    store.put(config)
    assert store.get("github") == config
    assert store.exists("github")
    data = json.loads(store.path("github").read_text())
    assert data["created_at"].endswith("Z")
    assert data == config.to_json()


def test_put_replaces_and_list_is_sorted(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    store.put(_config("b"))
    store.put(_config("a"))
    store.put(_config("b", port=9000))
    assert [(c.name, c.port) for c in store.list()] == [("a", None), ("b", 9000)]


def test_missing_and_delete(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    assert store.get("nope") is None
    assert store.list() == []
    assert not store.exists("nope")
    store.put(_config("w"))
    assert store.delete("w") is True
    assert store.delete("w") is False
    assert store.get("w") is None


def test_modes_and_no_temp_files(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    previous = os.umask(0)
    try:
        for port in range(8000, 8010):
            store.put(_config("w", port=port))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path("w")).st_mode) == 0o600
    assert [p.name for p in store.directory.iterdir()] == ["w.json"]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"name": "../x"}, "invalid workload name"),
        ({"remote_url": "ftp://example.com"}, "not an http(s) URL"),
        ({"remote_url": "not a url"}, "contains spaces"),
        ({"port": 0}, "$.port"),
        ({"port": 70000}, "$.port"),
        ({"callback_port": -1}, "$.callback_port"),
        ({"transport": "stdio"}, "$.transport"),
        ({"desired_state": "paused"}, "$.desired_state"),
    ],
)
def test_invalid_configs_are_rejected(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(SchemaError, match=re.escape(says)):
        _config(**overrides)


def test_a_config_built_in_code_is_checked_as_a_file_is() -> None:
    with pytest.raises(ValueError, match="invalid workload name"):
        WorkloadConfig(name="../x", remote_url="https://mcp.example.com/mcp")
    with pytest.raises(ValueError, match="between 1 and 65535"):
        WorkloadConfig(name="w", remote_url="https://mcp.example.com/mcp", port=70000)
    with pytest.raises(ValueError, match="not an http"):
        _config().replace(remote_url="ftp://example.com")


def test_unknown_keys_in_a_file_are_ignored(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    store.put(_config("w"))
    data = json.loads(store.path("w").read_text())
    data["added_by_a_newer_version"] = True
    store.path("w").write_text(json.dumps(data))
    config = store.get("w")
    assert config is not None and config.name == "w"


def test_file_name_is_the_identity(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    store.put(_config("w"))
    data = json.loads(store.path("w").read_text())
    data["name"] = "other"
    store.path("w").write_text(json.dumps(data))
    config = store.get("w")
    assert config is not None and config.name == "w"


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe", b"[]", b'{"name": "bad"}', b'{"name": "bad", "remote_url": "file:///etc/passwd"}'],
)
def test_corrupt_config_is_moved_aside_and_reported(tmp_path: Path, content: bytes) -> None:
    store = WorkloadStore(tmp_path)
    store.put(_config("good"))
    store.path("bad").write_bytes(content)

    listing = store.scan()

    assert [c.name for c in listing.configs] == ["good"]
    [corrupt] = listing.corrupted
    moved = store.directory / "bad.json.corrupted"
    assert corrupt.name == "bad" and corrupt.moved_to == moved
    assert str(moved) in corrupt.describe()
    assert moved.read_bytes() == content
    assert not store.exists("bad")
    assert [c.name for c in store.list()] == ["good"]


def test_get_of_a_corrupt_config_raises_a_clear_error(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    store.directory.mkdir(mode=0o700)
    store.path("w").write_bytes(b"{")
    expected = r"workload w: config w\.json was unreadable \(not valid JSON\)"
    with pytest.raises(CorruptStateError, match=expected):
        store.get("w")
    store.path("w").write_bytes(b"[")
    with pytest.raises(CorruptStateError, match=r"w\.json\.corrupted\.1"):
        store.get("w")
    assert (store.directory / "w.json.corrupted").read_bytes() == b"{"
    # Still reported on later reads (issue 9 item 4), naming the latest evidence...
    with pytest.raises(CorruptStateError, match=r"moved aside to .*w\.json\.corrupted\.1$"):
        store.get("w")
    assert [c.name for c in store.scan().corrupted] == ["w"]
    # ...until the user deals with it.
    assert store.discard_quarantined("w") == 2
    assert store.get("w") is None and store.scan().corrupted == []


def test_a_new_config_under_the_name_ends_the_report(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    store.directory.mkdir(mode=0o700)
    store.path("w").write_bytes(b"{")
    with pytest.raises(CorruptStateError):
        store.get("w")
    store.put(WorkloadConfig(name="w", remote_url="https://w.example.com/mcp"))
    assert store.get("w") is not None and store.scan().corrupted == []


def test_invalid_names_rejected_by_every_method(tmp_path: Path) -> None:
    store = WorkloadStore(tmp_path)
    for call in (store.get, store.exists, store.delete, store.path):
        with pytest.raises(ValueError, match="invalid workload name"):
            call("../../etc/passwd")
