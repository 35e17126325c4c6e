"""Prometheus metrics of the daemon (``GET /metrics`` on the TCP API listener).

ToolHive has no auth metrics; these are where an operator sees an outage coming: a
workload whose refreshes fail while its token still lasts is ``running`` with
``mcpkeeper_token_refresh_consecutive_failures`` > 0 and its expiry running down.

Two sources, so that ``auth/`` and ``proxy/`` never import Prometheus:

* *events*, counted as they happen through the observer seams
  (:class:`~mcpkeeper.workloads.observer.WorkloadObserver`, which hands each workload's
  monitor a :class:`~mcpkeeper.auth.protocols.MonitorObserver` and its proxy a
  :class:`~mcpkeeper.proxy.observer.ProxyObserver`): refresh attempts by outcome and
  failure kind, refresh durations, proxy latency, 503s served, upstream errors, time
  spent in ``auth_retrying``;
* *state*, read at scrape time (:class:`_StateCollector`): the status as a one-hot gauge
  over the eleven statuses, seconds until the access token expires, consecutive failures.

Label values are bounded sets (statuses, outcomes, the failure kinds of
:func:`failure_kind`, the proxy's reply kinds), plus the workload name; a removed
workload's series are dropped. Nothing here ever holds a token or a server's text.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mcpkeeper import __version__
from mcpkeeper.auth.errors import TIMEOUT, UNREACHABLE, Failure, FailureKind
from mcpkeeper.auth.monitor import MonitorSnapshot
from mcpkeeper.auth.protocols import MonitorObserver
from mcpkeeper.proxy.observer import ProxyObserver
from mcpkeeper.state.status_store import StatusRecord
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["DaemonMetrics", "WorkloadFacts", "failure_kind"]

#: Latency to the first byte of a proxied response: a local 503 takes microseconds, an
#: upstream tool call seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_REFRESH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: RFC 6749 §5.2 error codes (and RFC 8628's): any other code a server invents is "oauth_other".
_OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "temporarily_unavailable",
        "server_error",
        "access_denied",
        "expired_token",
        "slow_down",
        "authorization_pending",
    }
)


def failure_kind(failure: Failure | None) -> str:
    """A small, fixed vocabulary for what made a token request fail (a metric label)."""
    if failure is None:
        return "none"
    if failure.kind is FailureKind.STORAGE:
        return "storage"
    if failure.oauth_error is not None:
        return failure.oauth_error if failure.oauth_error in _OAUTH_ERRORS else "oauth_other"
    if failure.signature == TIMEOUT:
        return "timeout"
    if failure.network or failure.signature == UNREACHABLE:
        return "unreachable"
    code = failure.status_code
    if code is None:
        return "other"
    if code == 429:
        return "http_429"
    if code >= 500:
        return "http_5xx"
    if code >= 400:
        return "http_4xx"
    return "http_unusable"


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    """What the scrape reads of one workload: its recorded status and its live monitor."""

    name: str
    status: StatusRecord | None
    snapshot: MonitorSnapshot | None


@dataclass(slots=True)
class _RetryClock:
    """Seconds spent in ``auth_retrying`` (monotonic), closed periods plus the open one."""

    total: float = 0.0
    since: float | None = None

    def seconds(self, now: float) -> float:
        return self.total + (now - self.since if self.since is not None else 0.0)


@dataclass(slots=True)
class _Series:
    """The label tuples a workload has used, so its series can be dropped with it."""

    attempts: set[tuple[str, str]] = field(default_factory=set)
    unavailable: set[str] = field(default_factory=set)
    upstream: set[str] = field(default_factory=set)


class DaemonMetrics:
    """The daemon's registry and its :class:`~mcpkeeper.workloads.observer.WorkloadObserver`.

    ``facts`` lists the workloads at scrape time; ``on_status`` is told of every recorded
    status (the live event streams). ``clock`` is monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        facts: Callable[[], Iterable[WorkloadFacts]],
        *,
        on_status: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._on_status = on_status
        self._clock = clock
        self._retrying: dict[str, _RetryClock] = {}
        self._series: dict[str, _Series] = {}
        self.attempts = Counter(
            "mcpkeeper_token_refresh_attempts",
            "Token requests made by the monitor (refresh or client-credentials renewal), by outcome "
            "(success, transient, permanent, storage) and failure kind.",
            ["workload", "outcome", "kind"],
            registry=self.registry,
        )
        self.refresh_seconds = Histogram(
            "mcpkeeper_token_refresh_duration_seconds",
            "How long token requests took, from sending to their outcome.",
            ["workload"],
            buckets=_REFRESH_BUCKETS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "mcpkeeper_proxy_request_duration_seconds",
            "Time from a client request reaching the proxy to the start of its response.",
            ["workload"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.unavailable = Counter(
            "mcpkeeper_proxy_unavailable_responses",
            "503 responses served to clients, by reason (auth_retrying, unauthenticated, ...; "
            "'upstream' for the upstream's own 503).",
            ["workload", "reason"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "mcpkeeper_proxy_upstream_errors",
            "Requests the upstream MCP server failed: unreachable, timeout, broken (a response cut "
            "off), http_5xx (its own server error).",
            ["workload", "kind"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(facts, self._retrying, clock, wall))

    # -- WorkloadObserver ---------------------------------------------------------------
    def status_changed(self, name: str, status: WorkloadStatus) -> None:
        clock = self._retrying.setdefault(name, _RetryClock())
        now = self._clock()
        if status is WorkloadStatus.AUTH_RETRYING:
            if clock.since is None:
                clock.since = now
        elif clock.since is not None:
            clock.total += now - clock.since
            clock.since = None
        if self._on_status is not None:
            self._on_status()

    def monitor_observer(self, name: str) -> MonitorObserver:
        return _MonitorMetrics(self, name)

    def proxy_observer(self, name: str) -> ProxyObserver:
        return _ProxyMetrics(self, name)

    def forget(self, name: str) -> None:
        self._retrying.pop(name, None)
        series = self._series.pop(name, _Series())
        for outcome, kind in series.attempts:
            self.attempts.remove(name, outcome, kind)
        for reason in series.unavailable:
            self.unavailable.remove(name, reason)
        for kind in series.upstream:
            self.upstream_errors.remove(name, kind)
        for histogram in (self.refresh_seconds, self.latency):
            with contextlib.suppress(KeyError):  # no request (or attempt) was ever observed
                histogram.remove(name)
        if self._on_status is not None:
            self._on_status()

    def series(self, name: str) -> _Series:
        return self._series.setdefault(name, _Series())


class _MonitorMetrics:
    def __init__(self, metrics: DaemonMetrics, name: str) -> None:
        self._metrics = metrics
        self._name = name
        self._duration = metrics.refresh_seconds.labels(name)

    def attempt_finished(self, failure: Failure | None, seconds: float) -> None:
        outcome = "success" if failure is None else failure.kind.value
        kind = failure_kind(failure)
        self._metrics.series(self._name).attempts.add((outcome, kind))
        self._metrics.attempts.labels(self._name, outcome, kind).inc()
        self._duration.observe(max(0.0, seconds))


class _ProxyMetrics:
    """Per workload, with the latency child bound once: one ``observe`` per request."""

    def __init__(self, metrics: DaemonMetrics, name: str) -> None:
        self._metrics = metrics
        self._name = name
        self._latency = metrics.latency.labels(name)

    def response_started(self, status: int, seconds: float, kind: str | None) -> None:
        self._latency.observe(seconds)
        if status == 503:
            reason = kind or "upstream"
            self._metrics.series(self._name).unavailable.add(reason)
            self._metrics.unavailable.labels(self._name, reason).inc()
        upstream = _upstream_error(status, kind)
        if upstream is not None:
            self._upstream(upstream)

    def upstream_broken(self) -> None:
        self._upstream("broken")

    def _upstream(self, kind: str) -> None:
        self._metrics.series(self._name).upstream.add(kind)
        self._metrics.upstream_errors.labels(self._name, kind).inc()


def _upstream_error(status: int, kind: str | None) -> str | None:
    if kind == "upstream_unreachable":
        return "unreachable"
    if kind == "upstream_timeout":
        return "timeout"
    if kind is None and status >= 500:
        return "http_5xx"
    return None


class _StateCollector(Collector):
    """The metrics read from the workloads at scrape time."""

    def __init__(
        self,
        facts: Callable[[], Iterable[WorkloadFacts]],
        retrying: dict[str, _RetryClock],
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self._facts = facts
        self._retrying = retrying
        self._clock = clock
        self._wall = wall

    def collect(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "mcpkeeper_workload_status",
            "1 for the workload's current status, 0 for the ten others (ToolHive's status names).",
            labels=["workload", "status"],
        )
        expiry = GaugeMetricFamily(
            "mcpkeeper_token_expiry_seconds",
            "Seconds until the workload's access token expires (negative: expired); absent "
            "without a running monitor or for a token without expiry.",
            labels=["workload"],
        )
        failures = GaugeMetricFamily(
            "mcpkeeper_token_refresh_consecutive_failures",
            "Failed token requests since the last success (0 when healthy).",
            labels=["workload"],
        )
        retrying = CounterMetricFamily(
            "mcpkeeper_auth_retrying_seconds",
            "Time the workload spent in auth_retrying since the daemon started.",
            labels=["workload"],
        )
        info = GaugeMetricFamily("mcpkeeper_build_info", "The running mcpkeeper version.", labels=["version"])
        info.add_metric([__version__], 1)
        now, wall = self._clock(), self._wall()
        for fact in self._facts():
            current = fact.status.status if fact.status is not None else WorkloadStatus.UNKNOWN
            for value in WorkloadStatus:
                status.add_metric([fact.name, value.value], 1.0 if value is current else 0.0)
            snapshot = fact.snapshot
            if snapshot is not None:
                failures.add_metric([fact.name], snapshot.consecutive_failures)
                if snapshot.access_expires_at is not None:
                    expiry.add_metric([fact.name], snapshot.access_expires_at - wall)
            clock = self._retrying.get(fact.name)
            retrying.add_metric([fact.name], clock.seconds(now) if clock is not None else 0.0)
        yield from (status, expiry, failures, retrying, info)

    def describe(self) -> Iterator[Metric]:
        return iter(())
