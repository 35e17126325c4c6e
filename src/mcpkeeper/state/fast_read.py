"""Reading configs and statuses without pydantic, for ``mcpkeeper list``.

``list`` is typed often and scripted in loops; importing pydantic and building the store
models was a third of its start-up. This module reads the same files with :mod:`json`
and hand-written checks, under one rule that keeps it from ever disagreeing with the
stores: a file is accepted here only when every field it holds passes a check at least
as strict as its pydantic model's, and is then read to the same values. Anything else —
a corrupt file, a value pydantic would coerce (``"8080"`` for a port), a time in another
format, a file naming itself differently — is handed to the store itself, which reads,
quarantines and reports it exactly as it always has (importing pydantic only then).

The per-field checks mirror :class:`~.workload_store.WorkloadConfig` and the status file
model; ``tests/unit/test_state_fast_read.py`` fails when a model gains a field this
module does not check, or when the two disagree on a sample.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from mcpkeeper.state._quarantine import CorruptFile, CorruptStateError, leftover, read_each, scan_names
from mcpkeeper.state.names import NAME_PATTERN, validate_name
from mcpkeeper.state.remote_url import is_valid_remote_url
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["ConfigFacts", "ConfigScan", "StatusFacts", "read_config", "read_status", "scan_configs"]

_SUFFIX = ".json"
_MAX_BYTES = 1 << 20  # as the stores: anything larger is handed over (and found corrupt there)
_STATUSES = frozenset(status.value for status in WorkloadStatus)
# The form the stores write (ISO-8601, UTC); other forms pydantic accepts go the slow way.
_UTC_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")

_HAND_OVER: Any = object()
"""Marker: the file exists but this module will not judge it; the store must."""

_log = logging.getLogger("mcpkeeper.state.workload_store")  # the store's voice for the same events


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """What ``list`` shows of a :class:`~.workload_store.WorkloadConfig` (same names, same values)."""

    name: str
    remote_url: str
    port: int | None
    transport: str
    created_at: datetime
    desired_state: str

    @classmethod
    def of(cls, config: Any) -> ConfigFacts:
        """The facts of a config the store has read (a ``WorkloadConfig``)."""
        return cls(
            config.name,
            config.remote_url,
            config.port,
            config.transport,
            config.created_at,
            config.desired_state,
        )


@dataclass(frozen=True, slots=True)
class StatusFacts:
    """What ``list`` shows of a :class:`~.status_store.StatusRecord`."""

    name: str
    status: WorkloadStatus
    status_context: str
    updated_at: datetime
    pid: int | None

    @classmethod
    def of(cls, record: Any) -> StatusFacts:
        """The facts of a record the store has read (a ``StatusRecord``)."""
        return cls(record.name, record.status, record.status_context, record.updated_at, record.pid)


class ConfigScan(NamedTuple):
    configs: list[ConfigFacts]
    corrupted: list[CorruptFile]


def scan_configs(root: Path) -> ConfigScan:
    """``WorkloadStore(root).scan()``, as facts."""
    names = scan_names(root / "workloads", _SUFFIX)
    return ConfigScan(*read_each(names, lambda name: read_config(root, name), _log))


def read_config(root: Path, name: str) -> ConfigFacts | None:
    """``WorkloadStore(root).get(name)``, as facts: None if absent, CorruptStateError if unreadable."""
    path = root / "workloads" / f"{validate_name(name)}{_SUFFIX}"
    data = _read_json(path)
    if data is None:
        earlier = leftover(path, name)  # moved aside by an earlier read, never replaced
        if earlier is not None:
            raise CorruptStateError(earlier)
        return None
    if data is not _HAND_OVER and _fits(data, _CONFIG_FIELDS) and data["name"] == name:
        return ConfigFacts(
            name,
            data["remote_url"],
            data.get("port"),
            data.get("transport", "streamable-http"),
            _instant(data["created_at"]),
            data.get("desired_state", "running"),
        )
    from mcpkeeper.state.workload_store import WorkloadStore

    config = WorkloadStore(root).get(name)
    return None if config is None else ConfigFacts.of(config)


def read_status(root: Path, name: str) -> StatusFacts | None:
    """``StatusStore(root).get(name)``, as facts (a corrupt file becomes ``unknown`` there)."""
    data = _read_json(root / "statuses" / f"{validate_name(name)}{_SUFFIX}")
    if data is None:
        return None
    if data is not _HAND_OVER and _fits(data, _STATUS_FIELDS):
        return StatusFacts(
            name,
            WorkloadStatus(data["status"]),
            data.get("status_context", ""),
            _instant(data["updated_at"]),
            data.get("pid"),
        )
    from mcpkeeper.state.status_store import StatusStore

    record = StatusStore(root).get(name)
    return None if record is None else StatusFacts.of(record)


def _read_json(path: Path) -> Any:
    """The decoded file; None if there is none; :data:`_HAND_OVER` if anything is odd."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError:
        return _HAND_OVER
    if len(raw) > _MAX_BYTES:
        return _HAND_OVER
    try:
        data = json.loads(raw)
    except ValueError:  # includes undecodable bytes
        return _HAND_OVER
    return data if isinstance(data, dict) else _HAND_OVER


Check = Callable[[Any], bool]


def _fits(data: dict[str, Any], fields: dict[str, tuple[Check, bool]]) -> bool:
    """Every known field present passes its check, and every required one is present.

    Unknown keys are ignored, as the models ignore them (``extra="ignore"``).
    """
    for key, (check, required) in fields.items():
        if key in data:
            if not check(data[key]):
                return False
        elif required:
            return False
    return True


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_optional_str(value: Any) -> bool:
    return value is None or type(value) is str


def _is_port(value: Any) -> bool:
    return value is None or (type(value) is int and 1 <= value <= 65535)


def _is_pid(value: Any) -> bool:
    return value is None or type(value) is int


def _is_name(value: Any) -> bool:
    return type(value) is str and NAME_PATTERN.fullmatch(value) is not None


def _is_instant(value: Any) -> bool:
    if type(value) is not str or not _UTC_INSTANT.fullmatch(value):
        return False
    try:
        _instant(value)
    except ValueError:
        return False
    return True


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _one_of(*allowed: str) -> Check:
    return lambda value: type(value) is str and value in allowed


def _is_str_list(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _is_bool(value: Any) -> bool:
    return type(value) is bool


# field -> (check, required). Not required: absent means the model's default, which
# ConfigFacts/StatusFacts restate where they expose the field. ``created_at`` has a
# "now" default, so a config without it is handed over rather than guessed.
_CONFIG_FIELDS: dict[str, tuple[Check, bool]] = {
    "name": (_is_name, True),
    "remote_url": (lambda value: type(value) is str and is_valid_remote_url(value), True),
    "port": (_is_port, False),
    "transport": (_one_of("streamable-http", "sse"), False),
    "created_at": (_is_instant, True),
    "callback_port": (_is_port, False),
    "scopes": (_is_str_list, False),
    "resource": (_is_optional_str, False),
    "issuer": (_is_optional_str, False),
    "client_id": (_is_optional_str, False),
    "desired_state": (_one_of("running", "stopped"), False),
    "auth": (_is_bool, False),
    "client_auth": (_is_bool, False),
    "auth_challenge": (_is_optional_str, False),
}

_STATUS_FIELDS: dict[str, tuple[Check, bool]] = {
    "status": (lambda value: type(value) is str and value in _STATUSES, True),
    "status_context": (_is_str, False),
    "created_at": (_is_instant, True),
    "updated_at": (_is_instant, True),
    "pid": (_is_pid, False),
}
