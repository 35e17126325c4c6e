"""The monitored token source: one per workload, the heart of mcpkeeper.

It hands a valid access token to the proxy's hot path, refreshes it ahead of expiry in
the background, and decides — from the classification in :mod:`mcpkeeper.auth.errors`
— whether a failed refresh is worth waiting out or is the end of the grant.

States (``AuthState``) and the workload status each one shows::

    fresh     running          a token is cached; refresh failures still inside the
                               short retry are invisible while the token stays valid
    retrying  auth_retrying    the short retry ran out on a transient error; keep
                               trying (tick + recovery triggers) until success or ceiling
    dead      unauthenticated  a permanent verdict, or the ceiling; only a new login
                               (``relogin``) leaves it

Transitions and who makes them::

    fresh    -> retrying   short retry exhausted on a transient failure   (_enter_retrying)
    retrying -> fresh      an attempt succeeds                           (_apply_success)
    fresh    -> dead       permanent failure                             (_die)
    retrying -> dead       permanent failure, or the ceiling             (_die)
    dead     -> fresh      relogin(token)                                (relogin)
    retrying -> fresh      relogin(token)                                (relogin)

Single writer. Every state change happens synchronously together with its
``StatusSink.report`` call, with no ``await`` in between, so in one event loop two
transitions can never be reported out of order (the status-file inversion ToolHive had
to patch cannot happen by construction). All refresh attempts are made by the one
background task (:meth:`run`): callers never call the refresher themselves, they ask for
an attempt and wait on a shared future. That is the single-flight: N callers, one request.

Races, and how each is handled (look for "Race:" next to the code):

* A hot caller arrives while an attempt is in flight: it joins the attempt's future.
* A hot caller arrives in ``retrying`` while the loop's attempt is in flight: it joins
  too, so an attempt that succeeds serves it and the state is already ``fresh``.
* ``relogin`` while an attempt with the old grant is in flight: the generation counter
  changes and the stale attempt's outcome is discarded.
* The loop is cancelled (workload stopped) during a refresh: the request runs on,
  shielded, so that a refresh token the server already rotated is persisted by the
  refresher instead of being lost mid-flight; waiting callers get an error; no status
  is written (cancellation is not a failure).
* A permanent failure arrives after the state is already ``dead`` (e.g. a forced
  refresh raced with the loop): ``_die`` is idempotent and reports once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from mcpkeeper.auth.clock import Clock, SystemClock
from mcpkeeper.auth.config import RetryConfig
from mcpkeeper.auth.errors import (
    AuthRetryingError,
    Failure,
    FailureKind,
    TokenUnavailableError,
    UnauthenticatedError,
    classify,
)
from mcpkeeper.auth.protocols import ReachabilityProbe, Refresher, StatusSink
from mcpkeeper.auth.token import Token
from mcpkeeper.durations import format_duration
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["AuthState", "MonitorSnapshot", "MonitoredTokenSource"]

log = logging.getLogger(__name__)

_STALE_REGISTRATION_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
# States with nothing scheduled wait for the wake event alone; the timeout is only a backstop.
_IDLE_FOREVER = 86400.0


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
    ) -> None:
        self._refresher = refresher
        self._sink = sink
        self._cfg = config or RetryConfig()
        self._clock: Clock = clock or SystemClock()
        self._probe = probe
        self._name = name
        self._rng = rng or random.Random()
        self._login_hint = login_hint or (f"run `mcpkeeper login {name}`" if name else "log in again")

        self._token = token
        # The token the hot path may hand out; None when dead or after the upstream rejected it.
        self._serving: Token | None = token
        self._state = AuthState.FRESH if token is not None else AuthState.DEAD
        self._reason = "" if token is not None else f"no stored login; {self._login_hint}"
        self._generation = 0

        self._wake = asyncio.Event()
        self._pending: asyncio.Future[Token] | None = None  # outcome of the next/current attempt
        self._refresh_requested = False
        self._attempting = False
        self._running = False
        self._task: asyncio.Task[None] | None = None

        now = self._clock.monotonic()
        self._last_attempt_mono: float | None = None
        self._last_attempt_wall: float | None = None
        self._last_refresh_wall: float | None = token.issued_at if token is not None else None
        self._backoff_until: float | None = None  # short retry sleeping until (monotonic)
        self._not_before = now  # Retry-After barrier (monotonic)
        self._consecutive_failures = 0
        self._last_failure: Failure | None = None

        # auth_retrying bookkeeping
        self._retrying_since_wall: float | None = None
        self._demand = False
        self._demand_interval = self._cfg.demand_initial_interval
        self._probe_down = False  # the endpoint was seen unreachable since the last attempt
        self._probe_trigger = False
        self._probe_spacing = 0.0
        self._next_probe_mono = now
        self._wake_trigger = False
        self._clock_offset = self._clock.wall() - now

    # ------------------------------------------------------------------ public API --
    @property
    def state(self) -> AuthState:
        return self._state

    @property
    def name(self) -> str:
        return self._name

    async def token(self) -> Token:
        """A token to send now. The common case is two attribute reads and a clock read."""
        tok = self._serving
        if tok is not None and (
            tok.expires_at is None or self._clock.wall() < tok.expires_at - self._cfg.expiry_skew
        ):
            return tok
        return await self._token_slow()

    async def force_refresh(self, rejected: Token) -> Token:
        """The upstream answered 401 to ``rejected``: get another token, single-flight.

        Race: many requests may fail with the same token at once; only the first makes
        the monitor refresh, the others find a different token already serving and use it.
        """
        current = self._serving
        if (
            current is not None
            and current.access_token != rejected.access_token
            and current.is_valid(self._clock.wall(), self._cfg.expiry_skew)
        ):
            return current
        if self._state is AuthState.DEAD:
            raise UnauthenticatedError(self._reason)
        if self._serving is not None and self._serving.access_token == rejected.access_token:
            log.info("%s: upstream rejected the access token; refreshing", self._name)
            self._serving = None
        return await self._token_slow()

    def relogin(self, token: Token) -> None:
        """A new login produced ``token``: leave ``dead``/``retrying`` for ``fresh`` now."""
        self._generation += 1  # Race: an attempt in flight with the old grant is discarded.
        previous = self._state
        self._token = token
        self._serving = token
        self._state = AuthState.FRESH
        self._reason = ""
        self._reset_failures()
        self._last_refresh_wall = self._clock.wall()
        if previous is not AuthState.FRESH:
            self._sink.report(WorkloadStatus.RUNNING, "logged in again")
        self._resolve_pending(token)
        self._wake.set()

    def snapshot(self) -> MonitorSnapshot:
        tok = self._token
        return MonitorSnapshot(
            state=self._state,
            reason=self._reason,
            access_expires_at=tok.expires_at if tok is not None else None,
            has_refresh_token=bool(tok is not None and tok.refresh_token),
            last_refresh_at=self._last_refresh_wall,
            last_attempt_at=self._last_attempt_wall,
            next_attempt_at=self._next_attempt_wall(),
            retrying_since=self._retrying_since_wall,
            consecutive_failures=self._consecutive_failures,
            last_failure=self._last_failure.reason if self._last_failure else None,
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
        tok = self._serving
        if tok is not None and tok.is_valid(self._clock.wall(), self._cfg.expiry_skew):
            return tok
        if not self.alive:
            raise TokenUnavailableError("the token monitor is not running", retry_after=None)
        if self._pending is not None:
            # Race: an attempt is in flight (or already requested): share its outcome.
            return await asyncio.shield(self._pending)
        if self._attempting:
            # An attempt outlived ``caller_wait`` and released its callers; do not queue more.
            raise AuthRetryingError("token refresh in progress", retry_after=self._cfg.caller_wait)
        if self._state is AuthState.RETRYING:
            # Fail fast; the request only nudges the loop to try soon (demand trigger).
            self._demand = True
            self._wake.set()
            raise AuthRetryingError(self._retrying_reason(), retry_after=self._retry_after_retrying())
        if self._backoff_until is not None:
            retry_after = max(1.0, self._backoff_until - self._clock.monotonic())
            raise AuthRetryingError(self._failure_text(), retry_after=retry_after)
        return await asyncio.shield(self._request_attempt())

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
        elif self._state is AuthState.FRESH:
            await self._fresh_step()
        else:
            await self._retrying_step()

    async def _fresh_step(self) -> None:
        delay = self._refresh_delay()
        if delay is not None and delay > 0:
            await self._idle(min(delay, self._cfg.wake_check_interval))
            return
        if delay is None:  # a token without expiry: nothing to schedule until asked
            await self._idle(_IDLE_FOREVER)
            return
        await self._short_retry()

    def _refresh_delay(self) -> float | None:
        """Seconds until the background refresh is due; 0 when asked for one now."""
        if self._refresh_requested or self._pending is not None or self._serving is None:
            return 0.0
        tok = self._token
        if tok is None or tok.expires_at is None:
            return None
        now = self._clock.wall()
        if not tok.can_renew:
            # Nothing to refresh with: do not end a valid token early; at expiry the
            # attempt fails permanently and says that a login is needed.
            return tok.expires_at - self._cfg.expiry_skew - now
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

    async def _short_retry(self) -> None:
        """Exponential back-off with jitter; status stays ``running`` throughout."""
        generation = self._generation
        started = self._clock.monotonic()
        tries = 0
        while True:
            tries += 1
            failure = await self._attempt()
            if failure is None or generation != self._generation:
                return
            if failure.permanent:
                self._die(failure)
                return
            delay = self._backoff(tries)
            if failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
            elapsed = self._clock.monotonic() - started
            if tries >= self._cfg.max_tries or elapsed + delay > self._cfg.max_elapsed:
                left = self._serving_life_left()
                if left <= 0:
                    self._enter_retrying(failure)
                    return
                # Budget spent, but the current token still works: keep trying quietly at
                # the capped interval, the last time right at expiry. Clients see nothing,
                # so neither does the status (DESIGN §3: invisible while a valid token remains).
                delay = min(max(delay, self._cfg.max_retry_interval), left)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)  # the server's word beats our schedule
            log.info(
                "%s: token refresh failed (%s); retry %d in %s",
                self._name,
                failure.reason,
                tries,
                format_duration(delay),
            )
            self._backoff_until = self._clock.monotonic() + delay
            self._fail_pending(AuthRetryingError(self._failure_text(), retry_after=max(1.0, delay)))
            try:
                while self._clock.monotonic() < self._backoff_until:
                    await self._idle(self._backoff_until - self._clock.monotonic())
                    if generation != self._generation:
                        return  # Race: relogin during the back-off; it already set the state.
            finally:
                self._backoff_until = None

    async def _retrying_step(self) -> None:
        now = self._clock.monotonic()
        # At the ceiling, one last attempt decides: after a long suspend the ceiling may have
        # passed while the machine slept, and the network may well be back by now.
        final = self._ceiling_reached()
        due = max(now, self._not_before) if final else self._next_retrying_attempt(now)
        if due <= now:
            await self._retrying_attempt(final=final)
            return
        wait = due - now
        if self._probing():
            wait = min(wait, max(0.0, self._next_probe_mono - now))
        wait = min(wait, self._cfg.wake_check_interval, self._time_to_ceiling())
        await self._idle(wait)
        if self._probing() and self._clock.monotonic() >= self._next_probe_mono:
            await self._run_probe()

    async def _retrying_attempt(self, *, final: bool = False) -> None:
        cause_demand = self._demand
        cause_probe = self._probe_trigger
        self._demand = self._probe_trigger = self._wake_trigger = False
        generation = self._generation
        failure = await self._attempt()
        if failure is None or generation != self._generation:
            return
        if failure.permanent or final:
            self._die(failure if failure.permanent else self._ceiling_failure())
            return
        if cause_demand:
            self._demand_interval = min(self._demand_interval * 2, self._cfg.demand_max_interval)
        if cause_probe:
            self._probe_spacing = min(
                max(self._cfg.probe_interval, self._probe_spacing * 2), self._cfg.demand_max_interval
            )
        log.info("%s: still retrying: %s", self._name, failure.reason)
        retry_after = self._retry_after_retrying()
        self._fail_pending(AuthRetryingError(self._retrying_reason(), retry_after=retry_after))

    def _next_retrying_attempt(self, now: float) -> float:
        last = self._last_attempt_mono if self._last_attempt_mono is not None else now
        candidates = [last + self._cfg.retrying_tick]
        if self._demand and not (self._probing() and self._probe_down):
            # While the probe sees the endpoint unreachable, a request cannot succeed; the
            # probe itself will trigger the attempt the moment the endpoint answers.
            candidates.append(last + self._demand_interval)
        if self._probe_trigger:
            candidates.append(last + self._probe_spacing)
        if self._wake_trigger or self._refresh_requested or self._pending is not None:
            candidates.append(now)
        return max(min(candidates), self._not_before)

    def _probing(self) -> bool:
        return self._probe is not None and self._last_failure is not None and self._last_failure.network

    async def _run_probe(self) -> None:
        assert self._probe is not None
        self._next_probe_mono = self._clock.monotonic() + self._cfg.probe_interval
        try:
            reachable = await self._probe()
        except Exception:  # a probe must never take the monitor down
            log.debug("%s: reachability probe raised", self._name, exc_info=True)
            reachable = False
        if not reachable:
            self._probe_down = True
        elif self._probe_down:
            # The endpoint came back: attempt now rather than at the next tick.
            log.info("%s: token endpoint reachable again; attempting refresh", self._name)
            self._probe_down = False
            self._probe_trigger = True

    def _check_clock_jump(self) -> None:
        offset = self._clock.wall() - self._clock.monotonic()
        jumped = abs(offset - self._clock_offset) > self._cfg.wake_jump_threshold
        self._clock_offset = offset
        if jumped and self._state is AuthState.RETRYING:
            # Suspend/resume: likely a new network. Try now, and let demand start fast again.
            log.info("%s: wall clock jumped (suspend/resume?); attempting refresh", self._name)
            self._wake_trigger = True
            self._demand_interval = self._cfg.demand_initial_interval

    # ------------------------------------------------------------ one attempt, shared --
    async def _attempt(self) -> Failure | None:
        """Spend the refresh token once. Returns None on success, else the classified failure.

        On success the new token is applied (and the state goes ``fresh``) before any
        caller sees it; the refresher has persisted it before returning.
        """
        token = self._token
        assert token is not None
        generation = self._generation
        self._refresh_requested = False
        if self._pending is None:
            # Race: a caller arriving while this attempt is in flight joins it (even in
            # ``retrying``) instead of failing fast while the cure is one response away.
            self._pending = asyncio.get_running_loop().create_future()
            self._pending.add_done_callback(_consume)
        self._attempting = True
        self._last_attempt_mono = self._clock.monotonic()
        self._last_attempt_wall = self._clock.wall()
        request = asyncio.ensure_future(self._refresher(token))
        request.add_done_callback(_consume)
        answered = asyncio.Event()
        request.add_done_callback(lambda _: answered.set())
        try:
            if not await self._clock.wait(answered, self._cfg.caller_wait):
                # A hanging endpoint must not hang every MCP request queued behind it: release
                # the callers now (one timer here instead of one per caller); the request
                # itself runs on until its own timeout.
                self._fail_pending(
                    AuthRetryingError("token endpoint slow to answer", retry_after=self._cfg.caller_wait)
                )
            new_token = await asyncio.shield(request)
        except asyncio.CancelledError:
            # Race: stopped mid-refresh; the shielded request finishes and persists on its own.
            raise
        except Exception as exc:
            failure = classify(exc)
            if failure.kind is FailureKind.CANCELLED:  # pragma: no cover - CancelledError is BaseException
                raise asyncio.CancelledError from exc
            if generation == self._generation:
                self._note_failure(failure)
            return failure
        finally:
            self._attempting = False
        if generation != self._generation:
            return None  # Race: relogin replaced the grant while we were refreshing.
        self._apply_success(new_token)
        return None

    def _note_failure(self, failure: Failure) -> None:
        self._consecutive_failures += 1
        self._last_failure = failure
        if failure.retry_after is not None:
            self._not_before = self._clock.monotonic() + failure.retry_after
        if failure.network:
            self._probe_down = True
            soon = self._clock.monotonic() + self._cfg.probe_interval
            self._next_probe_mono = min(self._next_probe_mono, soon)

    def _apply_success(self, new_token: Token) -> None:
        previous = self._state
        self._token = new_token
        self._serving = new_token
        self._last_refresh_wall = self._clock.wall()
        retried_for = self._retrying_since_wall
        self._reset_failures()
        self._state = AuthState.FRESH
        self._reason = ""
        if previous is AuthState.RETRYING:
            took = format_duration(self._clock.wall() - retried_for) if retried_for is not None else "a while"
            log.info("%s: token refresh recovered after %s of retrying", self._name, took)
            self._sink.report(WorkloadStatus.RUNNING, f"token refresh recovered after {took}")
        self._resolve_pending(new_token)

    def _reset_failures(self) -> None:
        self._consecutive_failures = 0
        self._last_failure = None
        self._retrying_since_wall = None
        self._demand = self._probe_trigger = self._wake_trigger = self._probe_down = False
        self._demand_interval = self._cfg.demand_initial_interval
        self._probe_spacing = 0.0
        self._not_before = self._clock.monotonic()

    # ------------------------------------------------------------------ transitions --
    def _enter_retrying(self, failure: Failure) -> None:
        self._state = AuthState.RETRYING
        self._retrying_since_wall = self._clock.wall()
        self._demand_interval = self._cfg.demand_initial_interval
        self._reason = self._retrying_reason()
        log.warning("%s: entering auth_retrying: %s", self._name, self._reason)
        self._sink.report(WorkloadStatus.AUTH_RETRYING, self._reason)
        self._fail_pending(AuthRetryingError(self._reason, retry_after=self._retry_after_retrying()))

    def _die(self, failure: Failure) -> None:
        if self._state is AuthState.DEAD:
            return
        self._state = AuthState.DEAD
        self._serving = None
        self._retrying_since_wall = None
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

    def _serving_life_left(self) -> float:
        """Seconds the token being served stays usable (infinite without expiry, 0 if none)."""
        tok = self._serving
        if tok is None:
            return 0.0
        if tok.expires_at is None:
            return float("inf")
        return tok.expires_at - self._cfg.expiry_skew - self._clock.wall()

    def _ceiling_reached(self) -> bool:
        return self._time_to_ceiling() <= 0

    def _time_to_ceiling(self) -> float:
        if self._retrying_since_wall is None:
            return self._cfg.retrying_ceiling
        return self._retrying_since_wall + self._cfg.retrying_ceiling - self._clock.wall()

    def _ceiling_failure(self) -> Failure:
        last = self._last_failure.reason if self._last_failure else "unknown error"
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

    def _retry_after_retrying(self) -> float:
        """Seconds until the attempt a caller arriving now can count on."""
        now = self._clock.monotonic()
        last = self._last_attempt_mono if self._last_attempt_mono is not None else now
        if self._probing() and self._probe_down:
            eta = min(last + self._cfg.retrying_tick, self._next_probe_mono)
        else:
            eta = min(last + self._cfg.retrying_tick, last + self._demand_interval)
        eta = max(eta, self._not_before)
        return max(1.0, eta - now)

    def _next_attempt_wall(self) -> float | None:
        now = self._clock.monotonic()
        if self._state is AuthState.DEAD:
            return None
        if self._state is AuthState.RETRYING:
            return self._clock.wall() + (self._next_retrying_attempt(now) - now)
        if self._backoff_until is not None:
            return self._clock.wall() + (self._backoff_until - now)
        delay = self._refresh_delay()
        return None if delay is None else self._clock.wall() + max(0.0, delay)

    def _failure_text(self) -> str:
        failure = self._last_failure
        return f"token refresh failing: {failure.reason}" if failure else "token refresh in progress"

    def _retrying_reason(self) -> str:
        text = self._failure_text()
        left = self._serving_life_left()
        if 0 < left < float("inf"):
            text += f"; current access token still valid for {format_duration(left)}"
        return text

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
