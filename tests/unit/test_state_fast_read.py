"""state.fast_read: the stores' answers without pydantic, and never a different answer.

Every sample file is read twice, in two copies of the same home: by ``fast_read`` and by
the store itself. The results must agree (same values, same corruption verdict); and a
file ``fast_read`` accepts on its own (without handing it to the store) must be one the
pydantic model accepts with the same values.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcpkeeper.state import fast_read
from mcpkeeper.state.fast_read import ConfigFacts, StatusFacts, read_config, read_status, scan_configs
from mcpkeeper.state.status_store import StatusStore, _StatusFile
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadConfig, WorkloadStore

_CONFIG: dict[str, Any] = WorkloadConfig(
    name="w",
    remote_url="https://mcp.example.com/mcp?x=1",
    port=41000,
    scopes=["a", "b"],
    issuer="https://auth.example.com",
    client_id="cid",
).to_json()


def _status_json() -> dict[str, Any]:
    return json.loads(
        json.dumps(
            _StatusFile(
                status=WorkloadStatus.RUNNING,
                status_context="fine",
                created_at="2026-01-02T03:04:05.123456Z",  # type: ignore[arg-type]
                updated_at="2026-01-02T03:04:06Z",  # type: ignore[arg-type]
                pid=123,
            ).model_dump(mode="json")
        )
    )


def _with(base: dict[str, Any], **changes: Any) -> bytes:
    data = {**base, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not _DROP}).encode()


_DROP = object()

# The first ones are read without the store (the defaults of absent fields restated).
_FAST_CONFIGS = 9
_CONFIG_SAMPLES: list[bytes] = [
    _with(_CONFIG),
    _with(_CONFIG, port=None, transport=_DROP, desired_state=_DROP, scopes=_DROP, issuer=None),
    _with(_CONFIG, port=_DROP, callback_port=8765, resource=_DROP, client_id=None),
    _with(_CONFIG, transport="sse"),
    _with(_CONFIG, desired_state="stopped"),
    _with(_CONFIG, created_at="2026-01-02T03:04:05.5+00:00"),
    _with(_CONFIG, added_by_a_newer_version={"x": 1}),
    _with(_CONFIG, issuer=""),
    _with(_CONFIG, auth=False),
    _with(_CONFIG, port="41000"),  # pydantic coerces it: handed over, same answer
    _with(_CONFIG, port=41000.0),
    _with(_CONFIG, port=True),
    _with(_CONFIG, port=0),
    _with(_CONFIG, port=65536),
    _with(_CONFIG, callback_port="x"),
    _with(_CONFIG, transport="stdio"),
    _with(_CONFIG, desired_state="Stopped"),
    _with(_CONFIG, created_at="2026-01-02T03:04:05+02:00"),
    _with(_CONFIG, created_at="2026-01-02T03:04:05"),  # naive: the model refuses it
    _with(_CONFIG, created_at="2026-13-02T03:04:05Z"),
    _with(_CONFIG, created_at="2026-01-02T03:04:05.1234567Z"),
    _with(_CONFIG, created_at="2026-01-02 03:04:05Z"),
    _with(_CONFIG, created_at=1700000000),
    _with(_CONFIG, created_at=_DROP),
    _with(_CONFIG, name="other"),  # the file name wins
    _with(_CONFIG, name="../x"),
    _with(_CONFIG, name=_DROP),
    _with(_CONFIG, remote_url="ftp://example.com/"),
    _with(_CONFIG, remote_url="http://[::1"),
    _with(_CONFIG, remote_url="http:///nohost"),
    _with(_CONFIG, remote_url=5),
    _with(_CONFIG, scopes=["a", 1]),
    _with(_CONFIG, scopes="a"),
    _with(_CONFIG, resource=5),
    _with(_CONFIG, client_id=["x"]),
    _with(_CONFIG, auth="false"),
    _with(_CONFIG, auth=0),
    _with(_CONFIG, auth=None),
    b"[]",
    b"{",
    b"",
    b"\xff\xfe",
    b"null",
    b" " * ((1 << 20) + 1),
]

_FAST_STATUSES = 4
_STATUS_SAMPLES: list[bytes] = [
    _with(_status_json()),
    _with(_status_json(), status_context=_DROP, pid=_DROP, name="w"),
    _with(_status_json(), status="auth_retrying"),
    _with(_status_json(), pid=-1, extra=[1]),
    _with(_status_json(), status="RUNNING"),
    _with(_status_json(), status="bogus"),
    _with(_status_json(), status=1),
    _with(_status_json(), status_context=5),
    _with(_status_json(), pid="12"),
    _with(_status_json(), pid=True),
    _with(_status_json(), updated_at="2026-01-02T03:04:06-05:00"),
    _with(_status_json(), updated_at="yesterday"),
    _with(_status_json(), updated_at=_DROP),
    _with(_status_json(), created_at=_DROP),
    b"[1]",
    b"{ not json",
]


def _outcome(read: Callable[[], Any], home: Path) -> tuple[str, Any]:
    try:
        value = read()
    except CorruptStateError as exc:
        return "corrupt", str(exc).replace(str(home), "HOME")
    return "value", value


def _undated(outcome: tuple[str, Any]) -> tuple[str, Any]:
    kind, value = outcome
    return (kind, dataclasses.replace(value, created_at=None)) if isinstance(value, ConfigFacts) else outcome


def _normalised_status(facts: StatusFacts | None, home: Path) -> Any:
    if facts is None or facts.status != WorkloadStatus.UNKNOWN:
        return facts
    # "unknown" records carry the time of reading and the path of the moved file.
    return facts.status, facts.status_context.replace(str(home), "HOME")


def _two_homes(tmp_path: Path, kind: str, content: bytes) -> tuple[Path, Path]:
    fast_home, store_home = tmp_path / "fast", tmp_path / "store"
    (fast_home / kind).mkdir(parents=True)
    (fast_home / kind / "w.json").write_bytes(content)
    shutil.copytree(fast_home, store_home)
    return fast_home, store_home


class _HandOverSpy:
    """Counts the reads that ``fast_read`` hands to a store."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for store in (WorkloadStore, StatusStore):
            original = store.get

            def counted(this: Any, name: str, _original: Any = original) -> Any:
                self.calls += 1
                return _original(this, name)

            monkeypatch.setattr(store, "get", counted)


@pytest.mark.parametrize("content", _CONFIG_SAMPLES, ids=range(len(_CONFIG_SAMPLES)))
def test_config_reads_agree_with_the_store(tmp_path: Path, content: bytes) -> None:
    fast_home, store_home = _two_homes(tmp_path, "workloads", content)
    store = WorkloadStore(store_home)

    def by_store() -> ConfigFacts | None:
        config = store.get("w")
        return None if config is None else ConfigFacts.of(config)

    expected = _outcome(by_store, store_home)
    got = _outcome(lambda: read_config(fast_home, "w"), fast_home)
    if b'"created_at"' not in content:  # the model's default is "now": a different now each time
        expected, got = _undated(expected), _undated(got)
    assert got == expected
    assert sorted(p.name for p in (fast_home / "workloads").iterdir()) == sorted(
        p.name for p in (store_home / "workloads").iterdir()
    )


@pytest.mark.parametrize("index", range(len(_CONFIG_SAMPLES)))
def test_a_config_read_without_the_store_is_one_the_model_accepts(
    tmp_path: Path, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = _CONFIG_SAMPLES[index]
    fast_home, _ = _two_homes(tmp_path, "workloads", content)
    spy = _HandOverSpy(monkeypatch)
    facts = _outcome(lambda: read_config(fast_home, "w"), fast_home)
    assert (spy.calls == 0) == (index < _FAST_CONFIGS)
    if spy.calls == 0:
        model = WorkloadConfig.model_validate_json(content)
        assert facts == ("value", ConfigFacts.of(model))


@pytest.mark.parametrize("content", _STATUS_SAMPLES, ids=range(len(_STATUS_SAMPLES)))
def test_status_reads_agree_with_the_store(tmp_path: Path, content: bytes) -> None:
    fast_home, store_home = _two_homes(tmp_path, "statuses", content)
    record = StatusStore(store_home).get("w")
    expected = _normalised_status(None if record is None else StatusFacts.of(record), store_home)
    assert _normalised_status(read_status(fast_home, "w"), fast_home) == expected


@pytest.mark.parametrize("index", range(len(_STATUS_SAMPLES)))
def test_a_status_read_without_the_store_is_one_the_model_accepts(
    tmp_path: Path, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = _STATUS_SAMPLES[index]
    fast_home, _ = _two_homes(tmp_path, "statuses", content)
    spy = _HandOverSpy(monkeypatch)
    facts = read_status(fast_home, "w")
    assert (spy.calls == 0) == (index < _FAST_STATUSES)
    if spy.calls == 0:
        model = _StatusFile.model_validate_json(content)
        assert facts == StatusFacts("w", model.status, model.status_context, model.updated_at, model.pid)


def test_what_the_stores_write_is_read_without_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The common case must be the fast one, or the module is pointless."""
    WorkloadStore(tmp_path).put(WorkloadConfig.model_validate(_CONFIG))
    WorkloadStore(tmp_path).put(WorkloadConfig(name="bare", remote_url="http://h"))
    StatusStore(tmp_path).set("w", WorkloadStatus.AUTH_RETRYING, "retrying", pid=7)
    StatusStore(tmp_path).set("bare", WorkloadStatus.STOPPED)
    spy = _HandOverSpy(monkeypatch)
    scan = scan_configs(tmp_path)
    assert [c.name for c in scan.configs] == ["bare", "w"] and scan.corrupted == []
    status = read_status(tmp_path, "w")
    assert status is not None and status.status == WorkloadStatus.AUTH_RETRYING and status.pid == 7
    assert read_status(tmp_path, "bare") is not None
    assert read_status(tmp_path, "none") is None and read_config(tmp_path, "none") is None
    assert spy.calls == 0


def test_scan_reports_corrupt_configs_like_the_store(tmp_path: Path) -> None:
    WorkloadStore(tmp_path).put(WorkloadConfig(name="good", remote_url="http://h"))
    (tmp_path / "workloads" / "bad.json").write_bytes(b"[]")
    scan = scan_configs(tmp_path)
    assert [c.name for c in scan.configs] == ["good"]
    [corrupt] = scan.corrupted
    assert corrupt.name == "bad" and corrupt.moved_to == tmp_path / "workloads" / "bad.json.corrupted"


def test_every_model_field_is_checked() -> None:
    """A field added to a model must be added here too, or files would be judged differently."""
    assert set(fast_read._CONFIG_FIELDS) == set(WorkloadConfig.model_fields)
    assert set(fast_read._STATUS_FIELDS) == set(_StatusFile.model_fields)
    for name, (_, required) in fast_read._CONFIG_FIELDS.items():
        if not required:
            assert not WorkloadConfig.model_fields[name].is_required(), name
