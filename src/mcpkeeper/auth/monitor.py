"""The monitored token source: one per workload, the heart of mcpkeeper.

It hands a valid access token to the proxy's hot path, refreshes it ahead of expiry in
the background, and decides — from the classification in :mod:`mcpkeeper.auth.errors`
— whether a failed refresh is worth waiting out or is the end of the grant.

The one rule: **the status says what a client gets.** ``running`` only while a call would
be served with a token. The moment a call is refused for want of a token — or the token
runs out while refreshes are failing — the status is ``auth_retrying`` (transient) or
``unauthenticated`` (permanent), written before the refusal leaves this module. Failing
refreshes stay invisible only while a valid token remains.

States (``AuthState``) and the workload status each one shows::

    fresh     running          a usable token is served; refresh failures, if any, are
                               retried quietly (the outage is invisible to clients)
    retrying  auth_retrying    callers are blocked: no usable token, refresh failing (or
                               not answering); keep trying until success or the ceiling
    dead      unauthenticated  a permanent verdict, or the ceiling; only a new login
                               (``relogin``) leaves it

Transitions and who makes them::

    fresh    -> retrying   a caller is refused, or the token runs out during an outage  (_block)
    retrying -> fresh      an attempt succeeds                                         (_apply_success)
    fresh    -> dead       permanent failure; the upstream rejects a fresh token       (_die)
    retrying -> dead       permanent failure, or the ceiling                           (_die)
    dead     -> fresh      relogin(token)                                              (relogin)
    retrying -> fresh      relogin(token)                                              (relogin)

Single writer. Every state change happens synchronously together with its
``StatusSink.report`` call, with no ``await`` in between, so in one event loop two
transitions can never be reported out of order (the status-file inversion ToolHive had
to patch cannot happen by construction). All refresh attempts are made by the one
background task (:meth:`run`): callers never call the refresher themselves, they ask for
an attempt and wait on a shared future. That is the single-flight: N callers, one request.

The outage
----------
From the first failed attempt until a success (or a relogin, or the end of the grant) an
:class:`_Outage` exists; it holds all the retry bookkeeping, and nothing of it outlives
the outage. It schedules the next attempt as the earliest of:

* the back-off: exponential from ``initial_retry_interval`` to ``max_retry_interval``
  (``max_tries`` tries within ``max_elapsed``), then the ``retrying_tick`` (10 min); while
  a usable token remains, never later than the moment it runs out;
* the recovery triggers, which apply whenever callers are blocked (``retrying``), and
  the probe also when the token will run out before the next scheduled attempt:

  - the **probe** (:mod:`mcpkeeper.auth.probe`): a GET of the token endpoint through the
    same client, spending nothing, every ``probe_interval`` (network-level failures) or
    ``probe_interval`` growing to ``probe_max_interval`` (HTTP-level ones). When its
    answer *changes* to an answer (the WAF page gives way to the server's 405, a refused
    connection to any answer), attempt at once and drop a ``Retry-After`` barrier. Its
    first look after a failure that differs from the failure (the cause already cleared,
    or a fault on POST alone that a GET cannot see) is worth one attempt, barrier kept.
    The probe *watches* the outage when it answers like the failed attempt did;
  - **demand**: a call arriving while blocked asks for an attempt, at most one per
    ``demand`` interval (5 s growing 1.5x per failure to 60 s), and waits up to
    ``caller_wait`` (2 s) for it, so the first call after the cause clears is *served*.
    Demand rests while the probe watches (it will see the change first, for free);
  - **wake-up**: a jump of the wall clock against the monotonic clock (suspend/resume).

* ``Retry-After`` from the token endpoint is a barrier for all of them (see the probe).
* The hourly budget: attempts triggered by demand or the probe stop while the last hour
  holds ``max_attempts_per_hour`` (60) less the ticks' share; the scheduled ones go on.

At the ceiling (``retrying_ceiling`` after callers were first blocked) one last attempt
decides, so a laptop that slept past it is not killed without a try.

Hung requests and rotation
--------------------------
Every token request is bounded (``request_timeout``, 10 s: token endpoints answer in well
under a second). Callers waiting on an attempt are released after ``caller_wait`` (and
the status says ``auth_retrying`` if they were refused for it). While a request hangs, the
probe keeps watching; when it sees the endpoint answering, the hung request is abandoned
and a new one sent *only if that is safe for the refresh token*:

* the request body was never completely sent (stuck connecting or in the TLS handshake,
  a black-holed SYN after a VPN drop): the server cannot have acted on it — always safe;
* the server does not rotate refresh tokens (the last refresh kept ours): safe;
* the user declared the server's reuse grace (``reuse_grace``: Okta, Auth0, Keycloak
  have one) and the request is younger than it: safe.

Otherwise the request is waited out to its timeout. Sent, it may have reached a server
that rotated the token; only its response carries the new one, and sending the old token
again *in parallel* is exactly the reuse a strict server punishes by revoking the grant.
After the timeout a new attempt re-sends the token: if the hung request had spent it, the
grant was lost with that response whatever we do; if not (the usual case: a hung server
processes nothing), the new attempt succeeds.

Upstream 401
------------
``force_refresh(rejected)``: a 401 for a token that is no longer served is answered with
the current one (someone refreshed already). A 401 for the served token forces one
refresh — once per token generation. A token obtained by such a forced refresh and
rejected again means the upstream refuses this grant (wrong audience, revoked consent):
``unauthenticated``, with a reason that says so; no refresh storm.

Storage
-------
A refresh whose new token cannot be saved (disk full) raises ``TokenNotSavedError``
carrying the token: it is applied as a success (the old refresh token is spent; dropping
the new one would lose the grant), the status reason says it is kept in memory only, and
the save is retried with back-off until the disk takes it.

A gateway's shared store (Redis) that does not answer is a ``storage`` failure too, but
one reached over the network (``Failure.network``, signature ``unreachable``): no token
was spent, the valid token is served meanwhile, and once it runs out the status says
``auth_retrying`` ("state store unreachable"). Unlike our own disk it is *probed*: the
refresher's probe asks the store first and answers ``unreachable`` while it is down, so
the store coming back is a change the probe sees and an attempt follows within
``probe_interval`` (demand rests meanwhile, as for any outage the probe watches). Nothing
else in the schedule differs.

Races, and how each is handled (look for "Race:" next to the code):

* A hot caller arrives while an attempt is in flight: it joins the attempt's future.
* ``relogin`` while an attempt with the old grant is in flight: the generation counter
  changes and the stale attempt's outcome is discarded.
* The loop is cancelled (workload stopped) during a refresh: the request runs on, so that
  a refresh token the server already rotated is persisted by the refresher instead of
  being lost mid-flight; waiting callers get an error; no status is written.
* A permanent failure arrives after the state is already ``dead``: ``_die`` is
  idempotent and reports once.
* Many requests get 401 with the same token at once: only the first forces a refresh; the
  others find a different token served and replay with it.

Observer
--------
``observer`` (a :class:`~mcpkeeper.auth.protocols.MonitorObserver`, default a no-op) hears
the outcome of every token request from :meth:`_attempt`, in the background task, after
the outcome is applied: the daemon's metrics count attempts by outcome and failure kind
from it. It is never called from the hot path and never changes what the monitor does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType

from mcpkeeper.auth.clock import Clock, SystemClock
from mcpkeeper.auth.config import RetryConfig
from mcpkeeper.auth.errors import (
    TIMEOUT,
    UNREACHABLE,
    AuthRetryingError,
    Failure,
    FailureKind,
    TokenNotSavedError,
    TokenUnavailableError,
    UnauthenticatedError,
    classify,
)
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.auth.protocols import NO_OBSERVER, MonitorObserver, ReachabilityProbe, Refresher, StatusSink
from mcpkeeper.auth.token import Token, expiry_skew
from mcpkeeper.durations import format_duration
from mcpkeeper.sanitize import server_text
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["AuthState", "MonitorSnapshot", "MonitoredTokenSource"]

log = logging.getLogger(__name__)

_STALE_REGISTRATION_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
# States with nothing scheduled wait for the wake event alone; the timeout is only a backstop.
_IDLE_FOREVER = 86400.0
# Probe answers that say nothing reached the server (the probe cannot have seen a "change").
_SILENT = frozenset({UNREACHABLE, TIMEOUT})
# Demand-triggered attempts (and probe-triggered ones after a false alarm) space out by this
# factor per failure, 5 s to 60 s by default: gentler than doubling, so an outage the probe
# cannot see (a WAF rule on POST alone) is still left within seconds of the restore, while
# the hourly budget caps the total.
_GROWTH = 1.5
# A save that failed is retried from 1 s, doubling to a minute.
_SAVE_RETRY_INITIAL = 1.0
_SAVE_RETRY_MAX = 60.0


class AuthState(StrEnum):
    FRESH = "fresh"
    RETRYING = "retrying"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class MonitorSnapshot:
    """What ``mcpkeeper status`` shows: everything about the grant except the secrets."""

    state: AuthState
    reason: str
    access_expires_at: float | None
    has_refresh_token: bool
    last_refresh_at: float | None
    last_attempt_at: float | None
    next_attempt_at: float | None
    retrying_since: float | None
    consecutive_failures: int
    last_failure: str | None
    #: Set while a refreshed token is held in memory only (the save failed): why.
    unsaved: str | None = None


@dataclass(slots=True)
class _Outage:
    """The retry bookkeeping: exists from the first failure (or the first refusal) until
    a success, a relogin or the end of the grant."""

    started_mono: float
    next_scheduled: float
    not_before: float
    demand_interval: float
    tries: int = 0
    last_failure: Failure | None = None
    last_attempt_mono: float | None = None
    #: Wall time at which callers were first blocked (the status became auth_retrying).
    blocked_since_wall: float | None = None
    #: A call arrived while blocked and asked for an attempt.
    demand: bool = False
    #: The probe's last answer, and whether it changed to an answer since the last attempt.
    probe_seen: str | None = None
    probe_edge: bool = False
    probe_spacing: float = 0.0
    probe_streak: int = 0
    next_probe_mono: float = 0.0
    wake: bool = False
    reported_reason: str | None = None
    #: When the attempts of the last hour started (the request budget's window).
    attempts: deque[float] = field(default_factory=deque)

    @property
    def probe_sees_failure(self) -> bool:
        """The probe answers like the failed attempt did: it can see the outage lift."""
        failure = self.last_failure
        return failure is not None and self.probe_seen is not None and self.probe_seen == failure.signature


@dataclass(slots=True)
class _PendingSave:
    retry: TokenNotSavedError
    next_mono: float
    delay: float = _SAVE_RETRY_INITIAL


class MonitoredTokenSource:
    """Keeps one workload's token valid; see the module docstring for the state machine."""

    def __init__(
        self,
        token: Token | None,
        refresher: Refresher,
        sink: StatusSink,
        *,
        config: RetryConfig | None = None,
        clock: Clock | None = None,
        probe: ReachabilityProbe | None = None,
        name: str = "",
        rng: random.Random | None = None,
        login_hint: str | None = None,
        observer: MonitorObserver = NO_OBSERVER,
    ) -> None:
        self._refresher = refresher
        self._observer = observer
        self._sink = sink
        self._cfg = config or RetryConfig()
        self._clock: Clock = clock or SystemClock()
        self._probe = probe
        self._name = name
        self._rng = rng or random.Random()
        self._login_hint = login_hint or (f"run `mcpkeeper login {name}`" if name else "log in again")

        self._state = AuthState.FRESH if token is not None else AuthState.DEAD
        self._reason = "" if token is not None else f"no stored login; {self._login_hint}"
        self._generation = 0  # the grant: changes on relogin
        self._token: Token | None = None  # the newest token set (what the next refresh spends)
        self._serving: Token | None = None  # what the hot path hands out; None once rejected
        self._serving_until = -math.inf  # wall time until which ``_serving`` is handed out
        self._token_gen = 0  # changes with every token applied
        self._forced_gen: int | None = None  # the token generation a forced refresh produced
        self._rotates = True  # until a refresh shows otherwise, assume strict rotation
        if token is not None:
            self._install(token)
        self._last_refresh_wall: float | None = token.issued_at if token is not None else None

        self._wake = asyncio.Event()
        self._pending: asyncio.Future[Token] | None = None  # outcome of the next/current attempt
        self._refresh_requested = False
        self._in_flight: RequestProgress | None = None
        self._released = False  # the attempt in flight outlived ``caller_wait``
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self._outage: _Outage | None = None
        self._unsaved: _PendingSave | None = None
        self._last_attempt_wall: float | None = None
        self._clock_offset = self._clock.wall() - self._clock.monotonic()

    # ------------------------------------------------------------------ public API --
    @property
    def state(self) -> AuthState:
        return self._state

    @property
    def name(self) -> str:
        return self._name

    async def token(self) -> Token:
        """A token to send now. The common case is two attribute reads and a clock read."""
        if self._clock.wall() < self._serving_until:
            assert self._serving is not None
            return self._serving
        return await self._token_slow()

    async def force_refresh(self, rejected: Token) -> Token:
        """The upstream answered 401 to ``rejected``: get another token (see "Upstream 401")."""
        current = self._serving
        if (
            current is not None
            and current.access_token != rejected.access_token
            and self._clock.wall() < self._serving_until
        ):
            return current  # Race: another request already caused a refresh.
        if self._state is AuthState.DEAD:
            raise UnauthenticatedError(self._reason)
        if current is not None and current.access_token == rejected.access_token:
            if self._forced_gen == self._token_gen:
                self._die(
                    Failure(
                        FailureKind.PERMANENT,
                        "the MCP server rejected a freshly refreshed token (HTTP 401): it does not "
                        "accept this login",
                    )
                )
                raise UnauthenticatedError(self._reason)
            log.info("%s: the MCP server rejected the access token (HTTP 401); refreshing", self._name)
            self._withdraw_serving()
            self._refresh_requested = True
            self._forced_gen = -1  # the next token applied is the product of this forced refresh
        return await self._token_slow()

    def relogin(self, token: Token) -> None:
        """A new login produced ``token``: leave ``dead``/``retrying`` for ``fresh`` now."""
        self._generation += 1  # Race: an attempt in flight with the old grant is discarded.
        previous = self._state
        self._install(token)
        self._forced_gen = None
        self._state = AuthState.FRESH
        self._reason = ""
        self._outage = None
        self._unsaved = None
        self._last_refresh_wall = self._clock.wall()
        if previous is not AuthState.FRESH:
            self._sink.report(WorkloadStatus.RUNNING, "logged in again")
        self._resolve_pending(token)
        self._wake.set()

    def snapshot(self) -> MonitorSnapshot:
        tok = self._token
        outage = self._outage
        failure = outage.last_failure if outage is not None else None
        return MonitorSnapshot(
            state=self._state,
            reason=self._reason,
            access_expires_at=tok.expires_at if tok is not None else None,
            has_refresh_token=bool(tok is not None and tok.refresh_token),
            last_refresh_at=self._last_refresh_wall,
            last_attempt_at=self._last_attempt_wall,
            next_attempt_at=self._next_attempt_wall(),
            retrying_since=outage.blocked_since_wall if outage is not None else None,
            consecutive_failures=outage.tries if outage is not None else 0,
            last_failure=failure.reason if failure is not None else None,
            unsaved=self._unsaved_text(),
        )

    async def run(self) -> None:
        """The background task: every refresh attempt and every transition happens here.

        Cancel it to stop the monitor; cancellation writes no status.
        """
        if self._running:
            raise RuntimeError("MonitoredTokenSource.run() is already running")
        self._running = True
        try:
            while True:
                await self._step()
        finally:
            self._running = False
            self._fail_pending(TokenUnavailableError("the workload is stopping", retry_after=None))

    async def __aenter__(self) -> MonitoredTokenSource:
        self._task = asyncio.create_task(self.run(), name=f"token-monitor:{self._name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @property
    def alive(self) -> bool:
        """True while the background task runs or is about to (``auth_retrying`` promises
        someone is retrying)."""
        return self._running or (self._task is not None and not self._task.done())

    # ---------------------------------------------------------------- the hot path --
    async def _token_slow(self) -> Token:
        if self._state is AuthState.DEAD:
            raise UnauthenticatedError(self._reason)
        if self._clock.wall() < self._serving_until:
            assert self._serving is not None
            return self._serving
        if not self.alive:
            raise TokenUnavailableError("the token monitor is not running", retry_after=None)
        if self._pending is not None:
            # Race: an attempt is in flight (or already requested): share its outcome. The
            # loop releases the callers after ``caller_wait`` (and marks them blocked).
            return await asyncio.shield(self._pending)
        if self._released:
            # An attempt outlived ``caller_wait`` and released its callers: do not queue more.
            self._ensure_outage()
            self._block("the token endpoint is not answering")
            raise AuthRetryingError(self._blocked_reason(), retry_after=self._retry_after())
        outage = self._outage
        if outage is None:
            # No failure known: the token ran out before its refresh (a suspend, a token
            # without refresh-ahead room). Ask for an attempt and wait for it, briefly.
            return await asyncio.shield(self._request_attempt())
        # Callers are blocked from here on: the status says so before anyone is refused.
        self._block()
        outage.demand = True
        now = self._clock.monotonic()
        if self._demand_due(outage, now):
            return await asyncio.shield(self._request_attempt())
        self._wake.set()  # the loop recomputes its schedule with the demand noted
        raise AuthRetryingError(self._blocked_reason(), retry_after=self._retry_after())

    def _demand_due(self, outage: _Outage, now: float) -> bool:
        if self._probe_watches(outage):
            return False  # the probe watches the outage for free; it will see it lift first
        last = outage.last_attempt_mono if outage.last_attempt_mono is not None else -math.inf
        return now >= max(
            last + outage.demand_interval, outage.not_before, self._budget_frees_at(outage, now)
        )

    def _budget_frees_at(self, outage: _Outage, now: float) -> float:
        """When a triggered attempt fits the hourly request budget again (``now`` if it does).

        The scheduled attempts (back-off, tick) keep their share: triggers may use the
        budget less one hour's worth of ticks.
        """
        window = outage.attempts
        while window and window[0] <= now - 3600.0:
            window.popleft()
        per_hour = self._cfg.max_attempts_per_hour
        reserve = math.ceil(3600.0 / self._cfg.retrying_tick)
        allowed = max(per_hour // 2, per_hour - reserve, 1)  # a fast tick must not starve them
        if len(window) < allowed:
            return now
        return window[len(window) - allowed] + 3600.0

    def _request_attempt(self) -> asyncio.Future[Token]:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_future()
            # Nobody may be waiting (a caller can be cancelled): never warn about the outcome.
            self._pending.add_done_callback(_consume)
        self._refresh_requested = True
        self._wake.set()
        return self._pending

    # ------------------------------------------------------------- the loop's steps --
    async def _step(self) -> None:
        self._check_clock_jump()
        if self._state is AuthState.DEAD:
            await self._idle(_IDLE_FOREVER)  # only relogin (which sets the wake event) leaves
            return
        if self._unsaved is not None and self._clock.monotonic() >= self._unsaved.next_mono:
            await self._retry_save()
            return
        outage = self._outage
        if outage is None:
            delay = self._refresh_delay()
            if delay is None:  # a token without expiry: nothing to schedule until asked
                await self._idle(self._until_save(_IDLE_FOREVER))
            elif delay > 0:
                await self._idle(self._until_save(min(delay, self._cfg.wake_check_interval)))
            else:
                await self._attempt_and_settle()
            return
        now = self._clock.monotonic()
        if self._state is AuthState.FRESH and self._clock.wall() >= self._serving_until:
            self._block()  # the token ran out during the outage: callers are blocked now
        final = self._ceiling_reached()
        due = max(now, outage.not_before) if final else self._next_attempt(outage, now)
        if due <= now:
            await self._attempt_and_settle(final=final)
            return
        wait = due - now
        if self._probing(outage):
            wait = min(wait, max(0.0, outage.next_probe_mono - now))
        if self._state is AuthState.FRESH:
            wait = min(wait, max(0.0, self._serving_until - self._clock.wall()))
        wait = min(wait, self._cfg.wake_check_interval, self._time_to_ceiling())
        await self._idle(self._until_save(wait))
        if (
            self._outage is outage
            and self._probing(outage)
            and self._clock.monotonic() >= outage.next_probe_mono
        ):
            await self._run_probe(outage)

    def _until_save(self, wait: float) -> float:
        if self._unsaved is None:
            return wait
        return min(wait, max(0.0, self._unsaved.next_mono - self._clock.monotonic()))

    def _refresh_delay(self) -> float | None:
        """Seconds until the background refresh is due; 0 when asked for one now."""
        if self._refresh_requested or self._pending is not None or self._serving is None:
            return 0.0
        tok = self._token
        if tok is None or tok.expires_at is None:
            return None
        now = self._clock.wall()
        if not tok.can_renew:
            # Nothing to refresh with: do not end a valid token early; when it runs out the
            # attempt fails permanently and says that a login is needed.
            return self._serving_until - now
        return self._refresh_due(tok) - now

    def _refresh_due(self, tok: Token) -> float:
        """At ``refresh_ahead`` of the lifetime and ``refresh_min_lead`` before expiry, whichever
        is first; the lead is capped at half the lifetime so short-lived tokens are not
        refreshed in a loop."""
        assert tok.expires_at is not None
        issued = tok.issued_at if tok.issued_at is not None else self._last_refresh_wall
        if issued is None or issued >= tok.expires_at:
            return tok.expires_at - self._cfg.refresh_min_lead
        lifetime = tok.expires_at - issued
        lead = min(self._cfg.refresh_min_lead, lifetime / 2)
        return min(issued + self._cfg.refresh_ahead * lifetime, tok.expires_at - lead)

    def _next_attempt(self, outage: _Outage, now: float, *, assume_demand: bool = False) -> float:
        """Monotonic time of the next attempt (module docstring, "The outage")."""
        candidates = [outage.next_scheduled]
        last = outage.last_attempt_mono if outage.last_attempt_mono is not None else now
        demand = outage.demand or assume_demand
        budget = self._budget_frees_at(outage, now)
        if demand and self._state is AuthState.RETRYING and not self._probe_watches(outage):
            candidates.append(max(last + outage.demand_interval, budget))
        if outage.probe_edge:
            candidates.append(max(last + outage.probe_spacing, budget))
        if outage.wake or self._refresh_requested or self._pending is not None:
            candidates.append(now)
        return max(min(candidates), outage.not_before)

    def _probe_watches(self, outage: _Outage) -> bool:
        """The probe sees the outage (answers like the failure did), so demand can rest."""
        return self._probe is not None and outage.probe_sees_failure

    # ------------------------------------------------------------------- attempts --
    async def _attempt_and_settle(self, *, final: bool = False) -> None:
        outage = self._outage
        cause_demand = outage is not None and outage.demand
        cause_probe = outage is not None and outage.probe_edge
        generation = self._generation
        failure = await self._attempt()
        if failure is None or generation != self._generation:
            return
        if failure.permanent or (final and self._state is AuthState.RETRYING):
            self._die(failure if failure.permanent else self._ceiling_failure())
            return
        outage = self._outage
        assert outage is not None
        if cause_demand:
            outage.demand_interval = min(outage.demand_interval * _GROWTH, self._cfg.demand_max_interval)
        if cause_probe:
            outage.probe_spacing = min(
                max(self._cfg.probe_interval, outage.probe_spacing * _GROWTH), self._cfg.demand_max_interval
            )

    async def _attempt(self) -> Failure | None:
        """Spend the refresh token once. Returns None on success, else the classified failure.

        On success the new token is applied (and the state goes ``fresh``) before any
        caller sees it; the refresher has persisted it before returning (or says it could not).
        """
        token = self._token
        assert token is not None
        generation = self._generation
        self._refresh_requested = False
        if self._outage is not None:
            self._outage.demand = self._outage.probe_edge = self._outage.wake = False
        if self._pending is None:
            # Race: a caller arriving while this attempt is in flight joins it (even while
            # blocked) instead of being refused while the cure is one response away.
            self._pending = asyncio.get_running_loop().create_future()
            self._pending.add_done_callback(_consume)
        started = self._clock.monotonic()
        if self._outage is not None:
            self._outage.last_attempt_mono = started
            self._outage.attempts.append(started)
        self._last_attempt_wall = self._clock.wall()
        progress = RequestProgress()
        self._in_flight = progress
        request = asyncio.ensure_future(self._refresher(token, progress=progress))
        request.add_done_callback(_consume)
        answered = asyncio.Event()
        request.add_done_callback(lambda _: answered.set())
        try:
            await self._watch(request, answered, progress, started)
            new_token = request.result()
        except TokenNotSavedError as exc:
            if generation == self._generation:
                self._apply_success(exc.token)
                self._hold_unsaved(exc)
            self._observer.attempt_finished(None, self._clock.monotonic() - started)
            return None
        except Exception as exc:
            failure = classify(exc)
            if failure.kind is FailureKind.CANCELLED:  # pragma: no cover - CancelledError is BaseException
                raise asyncio.CancelledError from exc
            if generation == self._generation and not failure.permanent:
                self._note_failure(failure, started)  # a permanent one is the caller's to report
            self._observer.attempt_finished(failure, self._clock.monotonic() - started)
            return failure
        finally:
            self._in_flight = None
            self._released = False
        if generation == self._generation:  # else Race: relogin replaced the grant meanwhile
            self._apply_success(new_token)
        self._observer.attempt_finished(None, self._clock.monotonic() - started)
        return None

    async def _watch(
        self,
        request: asyncio.Future[Token],
        answered: asyncio.Event,
        progress: RequestProgress,
        started: float,
    ) -> None:
        """Wait for ``request``; meanwhile release callers after ``caller_wait`` and let the
        probe decide whether a hung request may be abandoned (module docstring)."""
        release_at = started + self._cfg.caller_wait
        released = False
        next_probe = math.inf
        while not request.done():
            now = self._clock.monotonic()
            deadline = release_at if not released else next_probe
            if await self._clock.wait(answered, min(max(0.0, deadline - now), _IDLE_FOREVER)):
                return
            now = self._clock.monotonic()
            if not released and now >= release_at:
                released = True
                self._release_callers(started)
                next_probe = now if self._probe is not None else math.inf
            elif released and now >= next_probe:
                next_probe = now + self._cfg.probe_interval
                if await self._probe_says_abandon(progress, started):
                    progress.abandon(even_if_sent=self._resend_is_safe(started))

    def _release_callers(self, started: float) -> None:
        """A hanging endpoint must not hang every MCP request queued behind it."""
        self._released = True
        if self._pending is None:
            return
        if self._clock.wall() >= self._serving_until:
            outage = self._ensure_outage()
            if outage.last_attempt_mono is None:
                outage.last_attempt_mono = started
            self._block("the token endpoint is not answering")
        self._fail_pending(
            AuthRetryingError("token endpoint slow to answer", retry_after=max(1.0, self._cfg.probe_interval))
        )

    async def _probe_says_abandon(self, progress: RequestProgress, started: float) -> bool:
        """Whether the endpoint answers now, so a new request would not hang like this one."""
        assert self._probe is not None
        seen = await self._probe_once()
        if seen in _SILENT:
            return False
        return not progress.sent or self._resend_is_safe(started)

    def _resend_is_safe(self, started: float) -> bool:
        """Sending the same refresh token again cannot count as reuse (module docstring)."""
        if not self._rotates:
            return True
        grace = self._cfg.reuse_grace
        return grace > 0 and self._clock.monotonic() - started < grace

    def _note_failure(self, failure: Failure, started: float) -> None:
        outage = self._ensure_outage()
        now = self._clock.monotonic()
        outage.last_attempt_mono = started
        if not outage.attempts or outage.attempts[-1] != started:
            outage.attempts.append(started)
        outage.tries += 1
        outage.last_failure = failure
        delay = self._backoff(outage.tries)
        elapsed = now - outage.started_mono
        if outage.tries >= self._cfg.max_tries or elapsed + delay > self._cfg.max_elapsed:
            delay = (
                self._cfg.retrying_tick if self._state is AuthState.RETRYING else self._cfg.max_retry_interval
            )
        left = self._serving_until - self._clock.wall()
        if self._state is AuthState.FRESH and left > 0:
            # Quiet while the token lasts, but try once more right when it runs out.
            delay = min(delay, max(left, 1.0))
        if failure.retry_after is not None:
            outage.not_before = now + failure.retry_after
            delay = max(delay, failure.retry_after)  # the server's word beats our schedule
        outage.next_scheduled = now + delay
        outage.next_probe_mono = min(outage.next_probe_mono, now + self._cfg.probe_interval)
        if self._state is AuthState.FRESH and left <= 0:
            self._block()
        elif self._state is AuthState.RETRYING:
            self._report_blocked_reason()
        log.info(
            "%s: token refresh failed (%s); next attempt in %s",
            self._name,
            failure.reason,
            format_duration(max(0.0, self._next_attempt(outage, now) - now)),
        )
        self._settle_waiters()

    def _settle_waiters(self) -> None:
        """Callers waiting on the attempt that just failed: the still-valid token if there is
        one (they joined a refresh started ahead of expiry), else a refusal."""
        if self._serving is not None and self._clock.wall() < self._serving_until:
            self._resolve_pending(self._serving)
        else:
            self._fail_pending(AuthRetryingError(self._blocked_reason(), retry_after=self._retry_after()))

    def _apply_success(self, new_token: Token) -> None:
        previous = self._state
        old = self._token
        self._rotates = old is None or new_token.refresh_token != old.refresh_token
        self._install(new_token)
        if self._forced_gen == -1:
            self._forced_gen = self._token_gen
        self._last_refresh_wall = self._clock.wall()
        blocked_since = self._outage.blocked_since_wall if self._outage is not None else None
        self._outage = None
        self._state = AuthState.FRESH
        self._reason = ""
        # Users ask "did it refresh?": the answer, at INFO, naming the lifetime, never the token.
        lifetime = new_token.expires_in(self._clock.wall())
        log.info(
            "%s: token refreshed (new access token %s%s)",
            self._name,
            f"valid for {format_duration(lifetime)}" if lifetime is not None else "without expiry",
            "; refresh token rotated" if self._rotates and old is not None else "",
        )
        if previous is AuthState.RETRYING:
            took = (
                format_duration(self._clock.wall() - blocked_since)
                if blocked_since is not None
                else "a while"
            )
            log.info("%s: token refresh recovered after %s of retrying", self._name, took)
            self._sink.report(WorkloadStatus.RUNNING, f"token refresh recovered after {took}")
        self._resolve_pending(new_token)

    def _install(self, token: Token) -> None:
        self._token = token
        self._serving = token
        self._token_gen += 1
        if token.expires_at is None:
            self._serving_until = math.inf
        else:
            self._serving_until = token.expires_at - expiry_skew(token, self._cfg.expiry_skew)

    def _withdraw_serving(self) -> None:
        self._serving = None
        self._serving_until = -math.inf

    # --------------------------------------------------------------------- storage --
    def _hold_unsaved(self, exc: TokenNotSavedError) -> None:
        self._unsaved = _PendingSave(exc, self._clock.monotonic() + _SAVE_RETRY_INITIAL)
        text = self._unsaved_text()
        log.error("%s: %s", self._name, text)
        if self._state is AuthState.FRESH:
            self._sink.report(WorkloadStatus.RUNNING, text or "")

    async def _retry_save(self) -> None:
        pending = self._unsaved
        assert pending is not None
        try:
            await pending.retry.retry_save()
        except Exception as exc:
            pending.delay = min(pending.delay * 2, _SAVE_RETRY_MAX)
            pending.next_mono = self._clock.monotonic() + pending.delay
            pending.retry.cause = exc
            log.warning(
                "%s: saving the new token failed again (%s); next try in %s",
                self._name,
                server_text(exc),
                format_duration(pending.delay),
            )
            return
        self._unsaved = None
        log.info("%s: the new token is saved", self._name)
        if self._state is AuthState.FRESH:
            self._sink.report(WorkloadStatus.RUNNING, "token saved (the storage error cleared)")

    def _unsaved_text(self) -> str | None:
        if self._unsaved is None:
            return None
        cause = server_text(self._unsaved.retry.cause)
        return f"token refreshed but not saved ({cause}); kept in memory, saving again"

    # --------------------------------------------------------------------- probe --
    def _probing(self, outage: _Outage) -> bool:
        """Probe while callers are blocked, or when the token will run out before the next
        scheduled attempt (a refusal is coming); never for our own disk's failures (a shared
        store across the network is probed: see "Storage" in the module docstring)."""
        if self._probe is None or outage.last_failure is None:
            return False
        if outage.last_failure.kind is FailureKind.STORAGE and not outage.last_failure.network:
            return False  # our own disk: nothing out there to watch
        if self._state is AuthState.RETRYING:
            return True
        wall_until_next = outage.next_scheduled - self._clock.monotonic()
        return self._serving_until - self._clock.wall() < wall_until_next

    async def _probe_once(self) -> str:
        assert self._probe is not None
        try:
            return await self._probe()
        except Exception:  # a probe must never take the monitor down
            log.debug("%s: reachability probe raised", self._name, exc_info=True)
            return UNREACHABLE

    async def _run_probe(self, outage: _Outage) -> None:
        seen = await self._probe_once()
        if self._outage is not outage:
            return  # Race: an attempt, a relogin or a death replaced the outage meanwhile.
        now = self._clock.monotonic()
        previous = outage.probe_seen
        outage.probe_seen = seen
        failure = outage.last_failure
        if seen in _SILENT:
            outage.probe_streak += 1
        elif previous is None and failure is not None and seen != failure.signature:
            # The first look since the failure, and it differs from it: either the cause
            # already cleared or the probe cannot see this fault (a WAF rule on POST alone).
            # One attempt tells which; the server's Retry-After still holds.
            outage.probe_edge = True
            outage.probe_streak = 0
        elif previous is not None and seen != previous:
            # The endpoint answers differently than it did: the cause may have cleared.
            # Attempt now; a Retry-After from the blocked state no longer holds.
            log.info("%s: token endpoint answers again (%s); attempting refresh", self._name, seen)
            outage.probe_edge = True
            outage.not_before = now
            outage.probe_streak = 0
        else:
            outage.probe_streak += 1
        outage.next_probe_mono = now + self._probe_interval(outage)

    def _probe_interval(self, outage: _Outage) -> float:
        failure = outage.last_failure
        if failure is not None and failure.network:
            return self._cfg.probe_interval  # a failed connect costs the server nothing
        grown = self._cfg.probe_interval * 2.0 ** min(outage.probe_streak, 8)
        return min(max(grown, self._cfg.probe_interval), self._cfg.probe_max_interval)

    def _check_clock_jump(self) -> None:
        offset = self._clock.wall() - self._clock.monotonic()
        jumped = abs(offset - self._clock_offset) > self._cfg.wake_jump_threshold
        self._clock_offset = offset
        if jumped and self._outage is not None:
            # Suspend/resume: likely a new network. Try now, and let demand start fast again.
            log.info("%s: wall clock jumped (suspend/resume?); attempting refresh", self._name)
            self._outage.wake = True
            self._outage.demand_interval = self._cfg.demand_initial_interval

    # ------------------------------------------------------------------ transitions --
    def _ensure_outage(self) -> _Outage:
        if self._outage is None:
            now = self._clock.monotonic()
            self._outage = _Outage(
                started_mono=now,
                next_scheduled=now,
                not_before=now,
                demand_interval=self._cfg.demand_initial_interval,
                next_probe_mono=now + self._cfg.probe_interval,
            )
        return self._outage

    def _block(self, why: str | None = None) -> None:
        """Callers are blocked: ``fresh -> retrying``, reported before the first refusal."""
        if self._state is not AuthState.FRESH:
            return
        outage = self._ensure_outage()
        self._state = AuthState.RETRYING
        outage.blocked_since_wall = self._clock.wall()
        outage.demand_interval = self._cfg.demand_initial_interval
        if self._probe is not None:
            outage.next_probe_mono = min(outage.next_probe_mono, self._clock.monotonic())
        self._reason = self._blocked_reason(why)
        outage.reported_reason = self._reason
        log.warning("%s: entering auth_retrying: %s", self._name, self._reason)
        self._sink.report(WorkloadStatus.AUTH_RETRYING, self._reason)

    def _report_blocked_reason(self) -> None:
        """A new kind of failure while blocked: say it (the same failure again writes nothing)."""
        outage = self._outage
        assert outage is not None
        reason = self._blocked_reason()
        if reason != outage.reported_reason:
            outage.reported_reason = reason
            self._reason = reason
            self._sink.report(WorkloadStatus.AUTH_RETRYING, reason)

    def _die(self, failure: Failure) -> None:
        if self._state is AuthState.DEAD:
            return
        self._state = AuthState.DEAD
        self._withdraw_serving()
        self._outage = None
        self._reason = self._dead_reason(failure)
        log.warning("%s: unauthenticated: %s", self._name, self._reason)
        self._sink.report(WorkloadStatus.UNAUTHENTICATED, self._reason)
        self._fail_pending(UnauthenticatedError(self._reason))

    def _dead_reason(self, failure: Failure) -> str:
        if failure.oauth_error in _STALE_REGISTRATION_ERRORS:
            return (
                f"{failure.reason}: the cached client registration is likely stale; "
                f"{self._login_hint} to register again"
            )
        return f"{failure.reason}; {self._login_hint}"

    def _ceiling_reached(self) -> bool:
        return self._state is AuthState.RETRYING and self._time_to_ceiling() <= 0

    def _time_to_ceiling(self) -> float:
        outage = self._outage
        if outage is None or outage.blocked_since_wall is None:
            return self._cfg.retrying_ceiling
        return outage.blocked_since_wall + self._cfg.retrying_ceiling - self._clock.wall()

    def _ceiling_failure(self) -> Failure:
        outage = self._outage
        last = outage.last_failure.reason if outage is not None and outage.last_failure else "unknown error"
        return Failure(
            FailureKind.PERMANENT,
            f"gave up after {format_duration(self._cfg.retrying_ceiling)} of failing token refreshes "
            f"(last: {last})",
        )

    # --------------------------------------------------------------------- helpers --
    async def _idle(self, timeout: float) -> None:
        await self._clock.wait(self._wake, max(0.0, timeout))
        self._wake.clear()

    def _backoff(self, tries: int) -> float:
        growth: float = 2.0 ** (tries - 1)
        base = min(self._cfg.initial_retry_interval * growth, self._cfg.max_retry_interval)
        jitter = 1.0 + self._rng.uniform(-self._cfg.jitter, self._cfg.jitter)
        return base * jitter

    def _retry_after(self) -> float:
        """Seconds until the attempt a caller arriving now can count on (for ``Retry-After``)."""
        outage = self._outage
        now = self._clock.monotonic()
        if outage is None:
            return 1.0
        eta = self._next_attempt(outage, now, assume_demand=True)
        if self._probe_watches(outage) and self._probing(outage):
            eta = min(eta, max(outage.next_probe_mono, outage.not_before))
        return max(1.0, eta - now)

    def _next_attempt_wall(self) -> float | None:
        now = self._clock.monotonic()
        if self._state is AuthState.DEAD:
            return None
        if self._outage is not None:
            return self._clock.wall() + max(0.0, self._next_attempt(self._outage, now) - now)
        delay = self._refresh_delay()
        return None if delay is None else self._clock.wall() + max(0.0, delay)

    def _failure_text(self) -> str:
        outage = self._outage
        failure = outage.last_failure if outage is not None else None
        return f"token refresh failing: {failure.reason}" if failure else "token refresh in progress"

    def _blocked_reason(self, why: str | None = None) -> str:
        outage = self._outage
        if outage is not None and outage.last_failure is not None:
            return self._failure_text()
        return f"token expired and {why or 'the refresh has not succeeded yet'}"

    def _resolve_pending(self, token: Token) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.set_result(token)

    def _fail_pending(self, error: TokenUnavailableError) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.set_exception(error)


def _consume(fut: asyncio.Future[Token]) -> None:
    """Retrieve a future's exception so an outcome nobody awaited is not logged as lost."""
    if not fut.cancelled():
        fut.exception()
