"""The state backend, as one interface: files on one machine, or Redis shared by replicas.

Everything the daemon keeps (workload configs, statuses with their history, stored
logins and client registrations) goes through a :class:`Store`. The file store is the
default and what every single-machine command uses; ``mcpkeeper serve --store
redis://…`` (or ``MCPKEEPER_STORE``) makes a daemon a gateway replica sharing a Redis
store with the others (:mod:`.redis_store`). The URL chooses:

* absent, ``file`` or ``file:`` — the files under ``MCPKEEPER_HOME``;
* ``redis://``, ``rediss://`` (TLS) or ``unix://`` — Redis, with the operator's
  encryption key (:mod:`.sealing`); ``?prefix=NAME`` keeps several gateways apart in one
  Redis.

The stores keep the synchronous interface of the file stores, so nothing above ``state``
knows which one it talks to, except the refresher (``mcpkeeper.workloads.grants`` picks
the cluster refresher for a shared store) and :attr:`Store.shared`.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from mcpkeeper.durations import positive_duration
from mcpkeeper.envsettings import read_setting
from mcpkeeper.state.history import Transition
from mcpkeeper.state.secrets import SecretStore
from mcpkeeper.state.status_store import StatusRecord, StatusStore, StoreStatusSink
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadListing, WorkloadStore

if TYPE_CHECKING:
    from mcpkeeper.state.redis_lease import GrantLeases
    from mcpkeeper.state.redis_store import RedisStore

__all__ = [
    "STORE_ENV",
    "FileStore",
    "SharedStore",
    "StatusRecords",
    "Store",
    "StoreURLError",
    "StoreUnreachableError",
    "WorkloadConfigs",
    "open_store",
]

STORE_ENV = "MCPKEEPER_STORE"
_LEASE_TTL_ENV = "MCPKEEPER_STORE_LEASE_TTL"
_POLL_ENV = "MCPKEEPER_STORE_POLL_INTERVAL"
_DEFAULT_LEASE_TTL = 5.0
_DEFAULT_POLL = 2.0


class StoreUnreachableError(ConnectionError):
    """The shared store did not answer (down, unreachable, timing out)."""


class StoreURLError(ValueError):
    """The store URL (or the key the store needs) is not usable; the message is one line."""


class WorkloadConfigs(Protocol):
    """Workload configs by name (:class:`~.workload_store.WorkloadStore`)."""

    def get(self, name: str) -> WorkloadConfig | None: ...
    def put(self, config: WorkloadConfig) -> None: ...
    def exists(self, name: str) -> bool: ...
    def delete(self, name: str) -> bool: ...
    def discard_quarantined(self, name: str) -> int: ...
    def list(self) -> builtins.list[WorkloadConfig]: ...
    def scan(self) -> WorkloadListing: ...


class StatusRecords(Protocol):
    """Statuses and their history by name (:class:`~.status_store.StatusStore`)."""

    def get(self, name: str) -> StatusRecord | None: ...
    def set(
        self, name: str, status: WorkloadStatus | str, context: str = "", *, pid: int | None = None
    ) -> StatusRecord: ...
    def list(self) -> builtins.list[StatusRecord]: ...
    def delete(self, name: str) -> None: ...
    def history(self, name: str, limit: int | None = None) -> builtins.list[Transition]: ...
    def sink(self, name: str, *, pid: int | None = None) -> StoreStatusSink: ...


class Store(Protocol):
    workloads: WorkloadConfigs
    statuses: StatusRecords
    secrets: SecretStore
    #: Several daemons (gateway replicas) share it: refreshes need the cluster's lease.
    shared: bool

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class FileStore:
    """The files under ``home`` (the default)."""

    shared = False

    def __init__(self, home: Path) -> None:
        self.workloads: WorkloadConfigs = WorkloadStore(home)
        self.statuses: StatusRecords = StatusStore(home)
        self.secrets = SecretStore(home)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class SharedStore:
    """A Redis store shared by gateway replicas, plus the leases of its grants."""

    shared = True

    def __init__(self, home: Path, redis: RedisStore, leases: GrantLeases) -> None:
        self.redis = redis
        self.leases = leases
        self.workloads: WorkloadConfigs = redis.workloads
        self.statuses: StatusRecords = redis.status_store
        self.secrets = SecretStore(home, backend=redis.secret_backend)

    async def start(self) -> None:
        await self.redis.start()

    async def aclose(self) -> None:
        await self.redis.aclose()


def open_store(
    url: str | None, home: Path, environ: Mapping[str, str] | None = None
) -> FileStore | SharedStore:
    """The store ``url`` names (default: ``$MCPKEEPER_STORE``, else files).

    :class:`StoreURLError` when the URL or the encryption key is unusable.
    """
    env = os.environ if environ is None else environ
    chosen = (url if url is not None else env.get(STORE_ENV, "")).strip()
    if chosen in ("", "file", "file:"):
        return FileStore(home)
    parts = urlsplit(chosen)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise StoreURLError(
            f"unknown store {parts.scheme or chosen!r}: use file, redis://, rediss:// or unix://"
        )
    from mcpkeeper.state.redis_lease import GrantLeases
    from mcpkeeper.state.redis_store import RedisStore
    from mcpkeeper.state.sealing import KeyRing, KeyRingError

    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", "mcpkeeper")
    if not prefix.replace("-", "").replace("_", "").isalnum():
        raise StoreURLError(f"store prefix {prefix!r}: letters, digits, - and _ only")
    plain = urlunsplit(
        (parts.scheme, parts.netloc, parts.path, "&".join(f"{k}={v}" for k, v in query.items()), "")
    )
    try:
        keys = KeyRing.from_env(env)
    except KeyRingError as exc:
        raise StoreURLError(str(exc)) from None
    redis = RedisStore(plain, keys, prefix=prefix, poll_interval=_duration(env, _POLL_ENV, _DEFAULT_POLL))
    return SharedStore(
        home, redis, GrantLeases(redis, ttl=_duration(env, _LEASE_TTL_ENV, _DEFAULT_LEASE_TTL))
    )


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    return read_setting(env, (name,), positive_duration, default, what="a positive duration")
