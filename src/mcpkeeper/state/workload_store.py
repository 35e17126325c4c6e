"""Workload configurations: ``<root>/workloads/<name>.json``, one per workload.

A config holds everything needed to bring a workload back after a restart *except*
secrets (tokens, client secret), which live in the secret store; ``client_id`` is kept
here for display only. Files are 0600 in a 0700 directory and written atomically.

An unreadable config is moved aside to ``<name>.json.corrupted[.N]`` (see
:mod:`._quarantine`). :meth:`WorkloadStore.get` then raises :class:`CorruptStateError`
naming the moved file, on that read and on every later one until the user deals with
it (a new config under the name, or :meth:`WorkloadStore.discard_quarantined`, which
``rm`` calls); :meth:`WorkloadStore.list` skips it and :meth:`WorkloadStore.scan` returns
it alongside the good ones, so every reader shows it (status ``unknown`` with
:meth:`CorruptFile.describe` as the reason), whichever process moved it.
"""

from __future__ import annotations

import builtins
import logging
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import msgspec

from mcpkeeper.state._clock import utcnow
from mcpkeeper.state._model_file import load_model_file, write_model_file
from mcpkeeper.state._quarantine import (
    CorruptFile,
    CorruptStateError,
    discard_evidence,
    leftover,
    read_each,
    scan_names,
)
from mcpkeeper.state._schema import UtcDatetime, to_json
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.paths import ensure_private_dir
from mcpkeeper.state.remote_url import check_remote_url

__all__ = [
    "CorruptStateError",
    "DesiredState",
    "Transport",
    "WorkloadConfig",
    "WorkloadListing",
    "WorkloadStore",
]

_log = logging.getLogger(__name__)

_SUFFIX = ".json"

Transport = Literal["streamable-http", "sse"]
DesiredState = Literal["running", "stopped"]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class WorkloadConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One remote MCP server kept by mcpkeeper (its schema: :mod:`._schema`).

    Unknown keys in a file are ignored, so a config written by a newer version still loads.
    """

    name: str
    remote_url: str
    port: Port | None = None
    """The stable local port of the workload's proxy route; None until one is assigned."""
    transport: Transport = "streamable-http"
    created_at: UtcDatetime = msgspec.field(default_factory=utcnow)
    callback_port: Port | None = None
    """Fixed loopback port for the OAuth redirect, when the client registration needs one."""
    scopes: list[str] = msgspec.field(default_factory=list)
    resource: str | None = None
    issuer: str | None = None
    client_id: str | None = None
    """Informational; the registration itself (and any secret) lives in the secret store."""
    desired_state: DesiredState = "running"
    """What the user asked for: a restarted daemon brings back only ``running`` workloads."""
    auth: bool = True
    """Whether the workload injects a token; False for a remote that needs no authentication."""
    client_auth: bool = False
    """Whether local clients must show the client token (``run --client-token``; see
    :mod:`mcpkeeper.workloads.client_auth` for when it is required anyway)."""
    auth_challenge: str | None = None
    """What the remote asked for after the workload started (a ``WWW-Authenticate`` value),
    so that ``mcpkeeper login NAME`` starts its discovery from it."""

    def __post_init__(self) -> None:
        # Also run on decode: a file with a bad name or URL is not a config.
        validate_name(self.name)
        check_remote_url(self.remote_url)
        for port in (self.port, self.callback_port):
            if port is not None and not 1 <= port <= 65535:  # decode checks it, construction not
                raise ValueError(f"port {port} is not between 1 and 65535")

    def replace(self, **changes: Any) -> WorkloadConfig:
        """A copy with ``changes``, checked like a new config.

        Built anew rather than with ``msgspec.structs.replace``, which does not run
        ``__post_init__`` in msgspec 0.19, our lower bound (``make test-min`` found it).
        """
        return WorkloadConfig(**{**msgspec.structs.asdict(self), **changes})

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``created_at`` as ISO-8601 UTC)."""
        data: dict[str, Any] = to_json(self)
        return data


class WorkloadListing(NamedTuple):
    configs: list[WorkloadConfig]
    corrupted: list[CorruptFile]


class WorkloadStore:
    """Config files under ``<root>/workloads``; ``root`` is the state home."""

    def __init__(self, root: Path) -> None:
        self.directory = root / "workloads"

    def path(self, name: str) -> Path:
        return self.directory / f"{validate_name(name)}{_SUFFIX}"

    def get(self, name: str) -> WorkloadConfig | None:
        """The config, or None if there is none; CorruptStateError if the file was unreadable."""
        loaded = load_model_file(self.path(name), WorkloadConfig, name=name)
        if isinstance(loaded, CorruptFile):
            raise CorruptStateError(loaded)
        if loaded is None:
            earlier = leftover(self.path(name), name)
            if earlier is not None:
                raise CorruptStateError(earlier)
        if loaded is not None and loaded.name != name:
            # The file name is the identity (it is what every other store keys on).
            _log.warning("workload file %s.json names itself %r; using %r", name, loaded.name, name)
            loaded = loaded.replace(name=name)
        return loaded

    def put(self, config: WorkloadConfig) -> None:
        """Create or replace the config, atomically."""
        ensure_private_dir(self.directory)
        write_model_file(self.path(config.name), config)

    def exists(self, name: str) -> bool:
        """Whether a config file is present (readable or not)."""
        return self.path(name).exists()

    def discard_quarantined(self, name: str) -> int:
        """Delete the ``.corrupted`` files of ``name`` (the user dealt with them); how many."""
        return discard_evidence(self.path(name))

    def delete(self, name: str) -> bool:
        """Remove the config; False if there was none. ``.corrupted`` files stay as evidence."""
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def list(self) -> builtins.list[WorkloadConfig]:
        """Every readable config, sorted by name; unreadable ones are moved aside and logged."""
        return self.scan().configs

    def scan(self) -> WorkloadListing:
        """Every config, sorted by name, plus the files found unreadable during this scan."""
        return WorkloadListing(*read_each(scan_names(self.directory, _SUFFIX), self.get, _log))
