"""Who may spend a grant's refresh token, cluster-wide: a lease with a fencing token.

Only the refresher of the auth layer knows what a token is; this module deals in
generations and sealed text. Each grant ``<name>`` has (keys of :mod:`.redis_store`):

* ``fence:<name>``: a counter. Taking the lease increments it (INCR), and never lets it
  fall to or below the stored login's generation (a Redis restarted empty starts the
  counter again: the re-published login's generation keeps it ahead). The value is the
  holder's *fencing token*.
* ``lease:<name>``: ``"<fence> <holder>"`` with a TTL (``PX``). Set only when absent
  (one holder); renewed and released only by the holder that set it (compare first).
  A holder that dies loses it when the TTL runs out.
* ``inflight:<name>``: written by the holder *before* it sends the refresh request:
  its fence, a hash of the refresh token it is about to spend, and Redis's own time. A
  successful commit removes it, and so does the holder itself when the request failed
  while it was alive to see it. One left behind means a holder died (or lost Redis) with
  a request that may have reached the server: the auth layer's rule decides what the
  next holder may do (``mcpkeeper.auth.cluster_refresher``).
* ``failed:<name>``: how the holder's attempt failed (its classified failure and the
  digest of the token it tried), for 30 s: a replica that *waited* on that attempt raises
  the same failure instead of sending a request of its own, so during an outage the
  cluster makes one attempt per grant per retry, not one per replica.
* ``login:<name>``: the login, with ``gen``. A commit is a compare-and-set: the new login
  is written only if the stored generation is *lower* than the committer's fence, and
  only for the same grant (a new login in between wins). So a holder that lost its
  lease and comes back late can never overwrite a newer token with an older one.

All of it is done by Lua scripts, so each step is atomic in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass

from redis.exceptions import RedisError

from mcpkeeper.state.redis_store import LoginEntry, RedisStore

__all__ = ["GrantLeases", "InFlight", "Lease", "token_digest"]

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('PTTL', KEYS[1])} end
local g = tonumber(redis.call('HGET', KEYS[3], 'gen') or '0')
local f = redis.call('INCR', KEYS[2])
if f <= g then f = g + 1; redis.call('SET', KEYS[2], f) end
redis.call('SET', KEYS[1], f .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, f}
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_MARK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'fence', ARGV[2], 'digest', ARGV[3], 'at', t[1] * 1000 + math.floor(t[2] / 1000))
return 1
"""

_CLEAR = """
if redis.call('HGET', KEYS[1], 'fence') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_COMMIT = """
local g = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
local f = tonumber(ARGV[1])
if g >= f then return 0 end
local grant = redis.call('HGET', KEYS[1], 'grant')
if grant and grant ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'gen', f, 'data', ARGV[2], 'grant', ARGV[3], 'rotates', ARGV[4])
local inflight = tonumber(redis.call('HGET', KEYS[2], 'fence') or '0')
if inflight <= f then redis.call('DEL', KEYS[2]) end
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[6], 'login:' .. ARGV[5])
return 1
"""

_NOW = """
local t = redis.call('TIME')
return t[1] * 1000 + math.floor(t[2] / 1000)
"""


#: How long a holder's failed outcome answers the replicas that waited on it.
_FAILURE_TTL_MS = 30_000


def token_digest(secret: str) -> str:
    """What ``inflight`` records of a refresh token: enough to recognise it, useless to spend."""
    return hashlib.sha256(b"mcpkeeper-inflight\0" + secret.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class InFlight:
    """A refresh request a holder announced and did not resolve."""

    fence: int
    digest: str
    age: float  # seconds, by Redis's clock


class Lease:
    """A held lease: renewed in the background while held, released on :meth:`release`."""

    def __init__(self, leases: GrantLeases, name: str, fence: int) -> None:
        self.leases = leases
        self.name = name
        self.fence = fence
        self.value = f"{fence} {leases.store.replica}"
        self._renewer: asyncio.Task[None] | None = None

    def keep_alive(self) -> None:
        """Renew every third of the TTL until released (a refresh may take longer than the TTL)."""
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_loop(), name=f"lease:{self.name}")

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.leases.ttl / 3)
            with contextlib.suppress(RedisError, OSError):
                if not await self.leases.renew(self):
                    return

    async def release(self) -> None:
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        with contextlib.suppress(RedisError, OSError):
            await self.leases.release(self)


class GrantLeases:
    """The lease, in-flight marker and fenced commit of every grant in one store."""

    def __init__(self, store: RedisStore, *, ttl: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl
        r = store.redis
        self._acquire = r.register_script(_ACQUIRE)
        self._renew = r.register_script(_RENEW)
        self._release = r.register_script(_RELEASE)
        self._mark = r.register_script(_MARK)
        self._clear = r.register_script(_CLEAR)
        self._commit = r.register_script(_COMMIT)
        self._now = r.register_script(_NOW)

    async def acquire(self, name: str) -> Lease | float:
        """The lease, or the seconds the current holder's lease still runs."""
        s = self.store
        taken, value = await self._acquire(
            keys=[s.key("lease", name), s.key("fence", name), s.key("login", name)],
            args=[s.replica, int(self.ttl * 1000)],
        )
        if int(taken) != 1:
            return max(0.0, int(value) / 1000.0)
        return Lease(self, name, int(value))

    async def renew(self, lease: Lease) -> bool:
        s = self.store
        return bool(
            await self._renew(keys=[s.key("lease", lease.name)], args=[lease.value, int(self.ttl * 1000)])
        )

    async def release(self, lease: Lease) -> None:
        await self._release(keys=[self.store.key("lease", lease.name)], args=[lease.value])

    async def mark_inflight(self, lease: Lease, digest: str) -> bool:
        """Announce the request about to be sent; False if the lease was lost (send nothing)."""
        s = self.store
        return bool(
            await self._mark(
                keys=[s.key("lease", lease.name), s.key("inflight", lease.name)],
                args=[lease.value, lease.fence, digest],
            )
        )

    async def clear_inflight(self, lease: Lease) -> None:
        await self._clear(keys=[self.store.key("inflight", lease.name)], args=[lease.fence])

    async def inflight(self, name: str) -> InFlight | None:
        s = self.store
        raw = {_t(k): _t(v) for k, v in (await s.redis.hgetall(s.key("inflight", name))).items()}
        if not raw:
            return None
        now_ms = int(await self._now(keys=[], args=[]))
        try:
            return InFlight(int(raw["fence"]), raw["digest"], max(0.0, (now_ms - int(raw["at"])) / 1000.0))
        except (KeyError, ValueError):
            return None

    async def record_failure(self, name: str, digest: str, outcome: dict[str, object]) -> None:
        """What the holder's attempt with the token ``digest`` ended in, for the replicas that waited."""
        s = self.store
        body = json.dumps({"digest": digest, **outcome})
        await s.redis.set(s.key("failed", name), body, px=_FAILURE_TTL_MS)

    async def last_failure(self, name: str, digest: str) -> dict[str, object] | None:
        """The outcome recorded by :meth:`record_failure` for that token, if recent."""
        s = self.store
        raw = await s.redis.get(s.key("failed", name))
        if raw is None:
            return None
        try:
            data = json.loads(_t(raw))
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("digest") == digest else None

    async def commit(self, name: str, fence: int, text: str, grant: str, *, rotates: bool) -> bool:
        """Write the refreshed login if no newer generation (nor another grant) is stored."""
        s = self.store
        sealed = s.keys.seal(text.encode("utf-8"), s.key("login", name))
        done = bool(
            await self._commit(
                keys=[s.key("login", name), s.key("inflight", name), s.key("logins")],
                args=[fence, sealed, grant, "1" if rotates else "0", name, s.channel],
            )
        )
        if done:
            s.adopt_login(name, LoginEntry(text, fence, grant, rotates))
        return done


def _t(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
