"""The shared store of a gateway: workload configs, statuses + history and logins in Redis.

Why a mirror. Everything above ``state`` reads and writes the stores synchronously (a
status is written in the same step as the transition it reports, the hot path never
waits on I/O). So each replica keeps a *mirror* of the shared state in memory: reads are
served from it, writes change it at once and are queued for Redis, where a writer task
sends them in order (the newest value per key wins; history entries are appended). Redis
is off every hot path: a replica keeps serving what it holds while Redis is away, and
catches up when it is back.

How the mirror stays current: every write publishes ``<kind>:<name>`` on the events
channel; each replica subscribes and re-reads what changed (a key with a local write
still queued is left alone: ours is newer). Pub/sub can drop messages (a reconnect), so
every ``poll_interval`` a replica also re-reads everything (a few keys per workload).

Redis restarted without persistence. An ``epoch`` key marks the data set; when a
replica finds it gone (or changed), it *re-publishes what it holds*: configs and
statuses only where absent, logins only over an older generation (so the newest token
any replica holds wins, and a spent one never replaces it). Then it writes a new epoch.
A workload deleted elsewhere is told apart from a lost data set by the epoch: the set of
names lost a member while the epoch stayed.

Secrets. Logins are sealed (:mod:`.sealing`) before they leave the process; configs and
statuses hold no secret (reasons are sanitised) and are stored in clear. The refresh
coordination that writes logins with a fencing token is in :mod:`.redis_lease`.

Keys (``P`` is the prefix, ``mcpkeeper`` by default)::

    P:epoch                       random id of the current data set
    P:workloads  P:logins         sets of names
    P:config:<name>               WorkloadConfig JSON
    P:status:<name>               status record JSON;  P:history:<name>  list of transitions
    P:login:<name>                hash: gen, data (sealed), grant, rotates
    P:fence:<name> P:lease:<name> P:inflight:<name>     (see .redis_lease)
    P:events                      pub/sub channel
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mcpkeeper.state._clock import utcnow
from mcpkeeper.state._schema import SchemaError, decode, encode
from mcpkeeper.state.history import DEFAULT_HISTORY_LIMIT, Transition
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.sealing import KeyRing, SealedValueError
from mcpkeeper.state.status_store import StatusRecord, StoreStatusSink, status_change
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.store import StoreUnreachableError
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadListing

__all__ = [
    "LoginEntry",
    "RedisSecretBackend",
    "RedisStatusStore",
    "RedisStore",
    "RedisWorkloadStore",
]

_log = logging.getLogger(__name__)

#: Redis commands fail fast (our own loops retry): a down Redis must not stall a replica.
_TIMEOUT = 1.0
_RETRY_INITIAL = 0.2
_RETRY_MAX = 2.0
_START_TIMEOUT = 30.0

# Re-publish a login only over an older generation, and keep the fence ahead of it.
_REPUBLISH_LOGIN = """
local g = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
local mine = tonumber(ARGV[1])
if g >= mine then return 0 end
redis.call('HSET', KEYS[1], 'gen', mine, 'data', ARGV[2], 'grant', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'rotates', ARGV[4]) end
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if f < mine then redis.call('SET', KEYS[2], mine) end
redis.call('SADD', KEYS[3], ARGV[5])
return 1
"""

# A new login (relogin, push): a generation above everything before it, a new grant id.
_NEW_LOGIN = """
local g = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
local f = redis.call('INCR', KEYS[2])
if f <= g then f = g + 1; redis.call('SET', KEYS[2], f) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gen', f, 'data', ARGV[1], 'grant', ARGV[2])
redis.call('DEL', KEYS[4])
redis.call('SADD', KEYS[3], ARGV[3])
return f
"""


@dataclass(frozen=True, slots=True)
class LoginEntry:
    """A stored login as the mirror holds it: the plaintext JSON and its coordination fields."""

    text: str
    gen: int
    grant: str
    rotates: bool | None = None


class RedisStore:
    """A replica's view of the shared state; see the module docstring.

    Call :meth:`start` (loads everything; waits for Redis up to ``start_timeout``) in the
    event loop that will use it, and :meth:`aclose` at the end.
    """

    def __init__(
        self,
        url: str,
        keys: KeyRing,
        *,
        prefix: str = "mcpkeeper",
        poll_interval: float = 2.0,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        now: Callable[[], datetime] = utcnow,
        client: Redis | None = None,
    ) -> None:
        self.url = url
        self.keys = keys
        self.prefix = prefix
        self.poll_interval = poll_interval
        self.history_limit = history_limit
        self.now = now
        self.redis: Redis = client or Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=_TIMEOUT,
            socket_connect_timeout=_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self.replica = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(3)}"
        self.configs: dict[str, WorkloadConfig] = {}
        self.statuses: dict[str, StatusRecord] = {}
        self.histories: dict[str, deque[Transition]] = {}
        self.logins: dict[str, LoginEntry] = {}
        #: Called with (kind, name) when another replica changed something we mirror:
        #: ``config``, ``login`` (a new grant, not a rotation), ``deleted``.
        self.listeners: list[Callable[[str, str], None]] = []
        self._pending: dict[tuple[str, str], Callable[[], Awaitable[None]]] = {}
        self._history_out: dict[str, list[Transition]] = {}
        self._login_waiters: dict[str, asyncio.Event] = {}
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._epoch: str | None = None
        self._closing = False
        self._republish = self.redis.register_script(_REPUBLISH_LOGIN)
        self._new_login = self.redis.register_script(_NEW_LOGIN)
        self.reachable = True
        self.workloads = RedisWorkloadStore(self)
        self.status_store = RedisStatusStore(self)
        self.secret_backend = RedisSecretBackend(self)

    # ------------------------------------------------------------------ keys --
    def key(self, kind: str, name: str | None = None) -> str:
        return f"{self.prefix}:{kind}" if name is None else f"{self.prefix}:{kind}:{name}"

    @property
    def channel(self) -> str:
        return self.key("events")

    # ------------------------------------------------------------- lifecycle --
    async def start(self, *, start_timeout: float = _START_TIMEOUT) -> None:
        """Load the shared state (waiting for Redis), then follow it."""
        deadline = time.monotonic() + start_timeout
        delay = _RETRY_INITIAL
        while True:
            try:
                await self._sync()
                break
            except (RedisError, OSError) as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreUnreachableError(
                        f"state store {_safe_url(self.url)} unreachable: {exc}"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="redis-store-writer"),
            asyncio.create_task(self._follow_loop(), name="redis-store-follower"),
            asyncio.create_task(self._poll_loop(), name="redis-store-poller"),
        ]

    async def aclose(self, *, flush_timeout: float = 2.0) -> None:
        """Send what is still queued (briefly), stop following, close the connections."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(flush_timeout):
                while self._pending and self.reachable:
                    self._wakeup.set()
                    await asyncio.sleep(0.02)
        self._closing = True
        # Cancel until they end: on Python 3.11 a cancel that meets an expiring
        # ``asyncio.timeout`` (inside the client's reads) can be turned into a TimeoutError,
        # so one cancel may be swallowed. The loops also check ``_closing``. Bounded.
        for _ in range(10):
            running = [task for task in self._tasks if not task.done()]
            if not running:
                break
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=0.5)
        for task in self._tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: nothing to report at shutdown
        self._tasks = []
        await self.redis.aclose()

    async def ping(self) -> bool:
        """Whether Redis answers now (the reachability probe of a store failure)."""
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    # ------------------------------------------------------------ the writer --
    def enqueue(self, kind: str, name: str, op: Callable[[], Awaitable[None]]) -> None:
        """Queue a write; a queued write of the same (kind, name) is replaced by this one."""
        self._pending.pop((kind, name), None)
        self._pending[(kind, name)] = op
        self._wakeup.set()

    @property
    def unsent(self) -> int:
        """Writes still queued (Redis has not taken them yet)."""
        return len(self._pending)

    def pending(self, kind: str, name: str) -> bool:
        return (kind, name) in self._pending

    async def _write_loop(self) -> None:
        delay = _RETRY_INITIAL
        while not self._closing:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                key, op = next(iter(self._pending.items()))
                try:
                    await op()
                except (RedisError, OSError) as exc:
                    self._went_down(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                except Exception:  # a bug in one write must not stop every later one
                    _log.exception("dropping a state store write (%s %s)", *key)
                if self._pending.get(key) is op:
                    del self._pending[key]
                self._came_back()
                delay = _RETRY_INITIAL

    def _went_down(self, exc: BaseException) -> None:
        if self.reachable:
            _log.warning("state store %s unreachable (%s); serving from memory", _safe_url(self.url), exc)
        self.reachable = False

    def _came_back(self) -> None:
        if not self.reachable:
            _log.warning("state store %s reachable again", _safe_url(self.url))
        self.reachable = True

    async def publish(self, kind: str, name: str) -> None:
        await self.redis.publish(self.channel, f"{kind}:{name}")

    # ---------------------------------------------------------- following --
    async def _follow_loop(self) -> None:
        """Pub/sub: re-read what another replica changed. Reconnects with back-off."""
        delay = _RETRY_INITIAL
        while not self._closing:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self._sync()  # whatever happened while we were not subscribed
                delay = _RETRY_INITIAL
                while not self._closing:
                    message = await pubsub.get_message(timeout=self.poll_interval)
                    data = message.get("data") if message is not None else None
                    if isinstance(data, bytes | str):
                        kind, _, name = _text(data).partition(":")
                        await self._refresh_one(kind, name)
            except (RedisError, OSError) as exc:
                self._went_down(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _poll_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._sync()
                self._came_back()
            except (RedisError, OSError) as exc:
                self._went_down(exc)

    async def _refresh_one(self, kind: str, name: str) -> None:
        try:
            validate_name(name)
        except ValueError:
            return
        if kind == "login":
            await self.refresh_login(name)
        elif kind == "status":
            if not self.pending("status", name):
                raw = await self.redis.get(self.key("status", name))
                record = _parse(StatusRecord, raw, name) if raw is not None else None
                if record is not None:
                    self.statuses[name] = record
            if name not in self._history_out:
                lines = await self.redis.lrange(self.key("history", name), -self.history_limit, -1)
                parsed = (_parse(Transition, line, name) for line in lines)
                self.histories[name] = deque((t for t in parsed if t is not None), maxlen=self.history_limit)
        elif kind in ("config", "deleted"):
            await self._sync()

    async def _sync(self) -> None:
        """Check the epoch (re-publishing after a lost data set), then re-read everything."""
        raw_epoch = await self.redis.get(self.key("epoch"))
        epoch = _text(raw_epoch) if raw_epoch is not None else None
        if epoch is None or epoch != self._epoch:
            if epoch is None and self._epoch is not None:
                _log.warning("the state store lost its data (restarted without persistence?); re-publishing")
            if self._epoch is not None or self.configs or self.logins:
                await self._republish_all()
            await self.redis.set(self.key("epoch"), secrets.token_hex(8), nx=True)
            raw_epoch = await self.redis.get(self.key("epoch"))
            self._epoch = _text(raw_epoch) if raw_epoch is not None else None
        names = sorted(_texts(await self.redis.smembers(self.key("workloads"))))
        login_names = sorted(_texts(await self.redis.smembers(self.key("logins"))))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(self.key("config", name))
                pipe.get(self.key("status", name))
                pipe.lrange(self.key("history", name), -self.history_limit, -1)
            for name in login_names:
                pipe.hgetall(self.key("login", name))
            results = await pipe.execute()
        self._apply_configs(names, results[: 3 * len(names)])
        for name, raw in zip(login_names, results[3 * len(names) :], strict=True):
            self._apply_login(name, _hash(raw))
        for name in set(self.logins) - set(login_names):
            if not self.pending("login", name):
                del self.logins[name]

    def _apply_configs(self, names: list[str], results: list[Any]) -> None:
        seen = set()
        for index, name in enumerate(names):
            raw_config, raw_status, raw_history = results[3 * index : 3 * index + 3]
            seen.add(name)
            if not self.pending("config", name) and raw_config is not None:
                config = _parse(WorkloadConfig, raw_config, name)
                if config is not None and config != self.configs.get(name):
                    self.configs[name] = config
                    self._tell("config", name)
            if not self.pending("status", name) and raw_status is not None:
                record = _parse(StatusRecord, raw_status, name)
                if record is not None:
                    self.statuses[name] = record
            if name not in self._history_out:
                parsed = (_parse(Transition, line, name) for line in raw_history)
                self.histories[name] = deque((t for t in parsed if t is not None), maxlen=self.history_limit)
        for name in set(self.configs) - seen:
            if not self.pending("config", name):
                del self.configs[name]
                self.statuses.pop(name, None)
                self.histories.pop(name, None)
                self._tell("deleted", name)

    # --------------------------------------------------------------- logins --
    def _apply_login(self, name: str, raw: dict[str, str]) -> None:
        if self.pending("login", name) or not raw.get("data"):
            return
        try:
            gen = int(raw.get("gen", "0"))
        except ValueError:
            return
        current = self.logins.get(name)
        if current is not None and current.gen >= gen:
            return
        try:
            text = self.keys.open(raw["data"], self.key("login", name)).decode("utf-8")
        except (SealedValueError, UnicodeDecodeError) as exc:
            _log.error("stored login of %s cannot be opened: %s", name, exc)
            return
        rotates = raw.get("rotates")
        entry = LoginEntry(text, gen, raw.get("grant", ""), None if rotates is None else rotates == "1")
        self.logins[name] = entry
        waiter = self._login_waiters.get(name)
        if waiter is not None:
            waiter.set()
        if current is not None and current.grant != entry.grant:
            self._tell("login", name)

    async def refresh_login(self, name: str) -> LoginEntry | None:
        """Re-read one login from Redis into the mirror (raises when Redis is unreachable).

        A login Redis lost (restarted empty) while this replica holds it is re-published
        first, over nothing older (see the module docstring).
        """
        raw = _hash(await self.redis.hgetall(self.key("login", name)))
        if raw:
            self._apply_login(name, raw)
        elif name in self.logins and not self.pending("login", name):
            await self.republish_login(name)
        return self.logins.get(name)

    async def republish_login(self, name: str) -> None:
        """Write the login this replica holds, unless Redis has one of the same or a newer generation."""
        entry = self.logins.get(name)
        if entry is None or entry.gen <= 0:
            return  # never written by anyone yet: the queued write does it
        sealed = self.keys.seal(entry.text.encode("utf-8"), self.key("login", name))
        rotates = "" if entry.rotates is None else ("1" if entry.rotates else "0")
        await self._republish(
            keys=[self.key("login", name), self.key("fence", name), self.key("logins")],
            args=[entry.gen, sealed, entry.grant, rotates, name],
        )

    def login_changed(self, name: str) -> asyncio.Event:
        """An event set whenever a newer login of ``name`` reaches the mirror (clear it first)."""
        return self._login_waiters.setdefault(name, asyncio.Event())

    def adopt_login(self, name: str, entry: LoginEntry) -> None:
        """Our own committed write (:mod:`.redis_lease`): the mirror holds it from now on."""
        current = self.logins.get(name)
        if current is None or current.gen <= entry.gen:
            self.logins[name] = entry

    def put_login(self, name: str, text: str) -> None:
        """A new login (``mcpkeeper login``, ``store push``): a new grant, above every generation."""
        grant = secrets.token_hex(8)
        current = self.logins.get(name)
        self.logins[name] = LoginEntry(text, current.gen if current is not None else 0, grant)
        sealed = self.keys.seal(text.encode("utf-8"), self.key("login", name))

        async def write() -> None:
            gen = await self._new_login(
                keys=[
                    self.key("login", name),
                    self.key("fence", name),
                    self.key("logins"),
                    self.key("inflight", name),
                ],
                args=[sealed, grant, name],
            )
            entry = self.logins.get(name)
            if entry is not None and entry.grant == grant:
                self.logins[name] = LoginEntry(text, int(gen), grant)
            await self.publish("login", name)

        self.enqueue("login", name, write)

    def delete_login(self, name: str) -> bool:
        existed = self.logins.pop(name, None) is not None

        async def write() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.key("login", name), self.key("inflight", name), self.key("lease", name))
                pipe.srem(self.key("logins"), name)
                await pipe.execute()
            await self.publish("login", name)

        self.enqueue("login", name, write)
        return existed

    # ---------------------------------------------------------- republishing --
    async def _republish_all(self) -> None:
        for name, config in list(self.configs.items()):
            await self.redis.set(self.key("config", name), encode(config).decode(), nx=True)
            await self.redis.sadd(self.key("workloads"), name)
            record = self.statuses.get(name)
            if record is not None:
                await self.redis.set(self.key("status", name), encode(record).decode(), nx=True)
        for name in list(self.logins):
            await self.republish_login(name)

    async def rekey(self) -> int:
        """Re-seal every stored login with the current key; how many were re-sealed."""
        count = 0
        for name in sorted(_texts(await self.redis.smembers(self.key("logins")))):
            key = self.key("login", name)
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                raw = await pipe.hget(key, "data")
                data = _text(raw) if raw is not None else None
                if data is None or self.keys.sealed_with_current(data):
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    continue
                resealed = self.keys.seal(self.keys.open(data, key), key)
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(key, "data", resealed)
                await pipe.execute()  # WatchError if a refresh wrote meanwhile: run rekey again
            count += 1
        return count

    def _tell(self, kind: str, name: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(kind, name)
            except Exception:
                _log.exception("state store listener failed for %s %s", kind, name)


class RedisWorkloadStore:
    """Workload configs in the shared store (the :class:`~.workload_store.WorkloadStore` interface)."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def get(self, name: str) -> WorkloadConfig | None:
        return self._store.configs.get(validate_name(name))

    def put(self, config: WorkloadConfig) -> None:
        store = self._store
        store.configs[config.name] = config
        text = encode(config).decode()

        async def write() -> None:
            await store.redis.set(store.key("config", config.name), text)
            await store.redis.sadd(store.key("workloads"), config.name)
            await store.publish("config", config.name)

        store.enqueue("config", config.name, write)

    def exists(self, name: str) -> bool:
        return validate_name(name) in self._store.configs

    def delete(self, name: str) -> bool:
        store = self._store
        existed = store.configs.pop(validate_name(name), None) is not None

        async def write() -> None:
            await store.redis.srem(store.key("workloads"), name)
            await store.redis.delete(store.key("config", name))
            await store.publish("deleted", name)

        store.enqueue("config", name, write)
        return existed

    def discard_quarantined(self, name: str) -> int:
        return 0  # nothing is ever moved aside in Redis: an unparsable value is skipped and logged

    def list(self) -> builtins.list[WorkloadConfig]:
        return [self._store.configs[name] for name in sorted(self._store.configs)]

    def scan(self) -> WorkloadListing:
        return WorkloadListing(self.list(), [])


class RedisStatusStore:
    """Statuses and history in the shared store (the :class:`~.status_store.StatusStore` interface)."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def get(self, name: str) -> StatusRecord | None:
        return self._store.statuses.get(validate_name(name))

    def set(
        self, name: str, status: WorkloadStatus | str, context: str = "", *, pid: int | None = None
    ) -> StatusRecord:
        store = self._store
        previous = store.statuses.get(validate_name(name))
        record, transition = status_change(previous, name, status, context, pid=pid, now=store.now())
        store.statuses[name] = record
        text = encode(record).decode()

        async def write_status() -> None:
            await store.redis.set(store.key("status", name), text)
            await store.publish("status", name)

        store.enqueue("status", name, write_status)
        if transition is not None:
            self._append(name, transition)
        return record

    def _append(self, name: str, transition: Transition) -> None:
        store = self._store
        store.histories.setdefault(name, deque(maxlen=store.history_limit)).append(transition)
        store._history_out.setdefault(name, []).append(transition)

        async def write_history() -> None:
            out = store._history_out.get(name, [])
            if not out:
                return
            sending = list(out)
            key = store.key("history", name)
            await store.redis.rpush(key, *(encode(t).decode() for t in sending))
            await store.redis.ltrim(key, -store.history_limit, -1)
            del out[: len(sending)]
            if not out:
                store._history_out.pop(name, None)

        store.enqueue("history", name, write_history)

    def list(self) -> builtins.list[StatusRecord]:
        return [self._store.statuses[name] for name in sorted(self._store.statuses)]

    def delete(self, name: str) -> None:
        store = self._store
        store.statuses.pop(validate_name(name), None)
        store.histories.pop(name, None)
        store._history_out.pop(name, None)

        async def write() -> None:
            await store.redis.delete(store.key("status", name), store.key("history", name))

        store.enqueue("status", name, write)

    def history(self, name: str, limit: int | None = None) -> builtins.list[Transition]:
        kept = builtins.list(self._store.histories.get(validate_name(name), ()))
        return kept if limit is None else kept[-limit:] if limit > 0 else []

    def sink(self, name: str, *, pid: int | None = None) -> StoreStatusSink:
        return StoreStatusSink(self, name, pid=os.getpid() if pid is None else pid)


class RedisSecretBackend:
    """Stored logins in the shared store, sealed (the :class:`~.secrets.SecretBackend` interface)."""

    label = "redis"

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def read(self, name: str) -> str | None:
        entry = self._store.logins.get(validate_name(name))
        return entry.text if entry is not None else None

    def write(self, name: str, text: str) -> None:
        self._store.put_login(validate_name(name), text)

    def delete(self, name: str) -> bool:
        return self._store.delete_login(validate_name(name))

    def move_aside(self, name: str) -> str | None:
        return None  # an unreadable login stays where it is (and is logged when read)

    def quarantined(self, name: str) -> str | None:
        return None

    def discard_quarantined(self, name: str) -> None:
        return None


def _text(value: bytes | str) -> str:
    """A reply of the client (``decode_responses=True``: always text; the types say either)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _texts(values: Any) -> list[str]:
    return [_text(v) for v in values]


def _hash(raw: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _parse(model: Any, raw: bytes | str, name: str) -> Any:
    try:
        return decode(raw, model)
    except SchemaError:
        _log.error("state store: an unreadable %s value for %s was skipped", model.__name__, name)
        return None


def _safe_url(url: str) -> str:
    """The URL without a password (``redis://:secret@host`` must not reach a log line)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"
