"""The backends' tool lists, cached per workload, and the aggregated namespaced view.

A workload's list is (re)fetched only while it is healthy, and then when:

- there is no list yet;
- its status was written since the list was fetched (it restarted, or turned
  ``running`` again after an outage: its tools may have changed);
- the list is older than ``max_age`` (checked when a client lists tools).

A fetch that fails keeps the old list and is not retried for ``retry_interval`` unless
the status changes, so a hanging backend cannot make every tools/list wait on it.
The cache outlives outages on purpose: degraded backends keep their tools advertised.
With a :class:`~.toolstore.ToolStore` it also outlives the daemon: lists are loaded from
it at start (and fetched again as soon as their workload is healthy) and saved when they
change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import mcp_types as types

from mcpkeeper.vmcp.names import NameTable, Route
from mcpkeeper.vmcp.policy import behaviour_of
from mcpkeeper.vmcp.toolstore import ToolStore
from mcpkeeper.vmcp.view import WorkloadView

__all__ = ["ToolCatalog"]


@dataclass(frozen=True, slots=True)
class _Listing:
    tools: dict[str, types.Tool]
    """By the backend's own tool name."""
    status_since: datetime | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class _FailedFetch:
    status_since: datetime | None
    at: float


class ToolCatalog:
    """See the module docstring. The aggregator fetches; the catalog decides and keeps."""

    def __init__(
        self,
        *,
        max_age: float,
        retry_interval: float,
        clock: Callable[[], float] = time.monotonic,
        store: ToolStore | None = None,
    ) -> None:
        self._max_age = max_age
        self._retry_interval = retry_interval
        self._clock = clock
        self._store = store
        self._failures: dict[str, _FailedFetch] = {}
        # Stored lists count as fetched never, under no status: a healthy workload is asked again.
        self._listings: dict[str, _Listing] = {
            name: _Listing({t.name: t for t in tools}, None, -math.inf)
            for name, tools in (store.load_all() if store is not None else {}).items()
        }
        self._names = NameTable()
        self._rebuild_names()

    # ---------------------------------------------------------------- decisions --
    def needs_fetch(self, view: WorkloadView) -> bool:
        if not behaviour_of(view).fetch:
            return False
        now = self._clock()
        failed = self._failures.get(view.name)
        if (
            failed is not None
            and failed.status_since == view.status_since
            and now - failed.at < self._retry_interval
        ):
            return False
        listing = self._listings.get(view.name)
        return (
            listing is None
            or listing.status_since != view.status_since
            or now - listing.fetched_at >= self._max_age
        )

    # ------------------------------------------------------------------ updates --
    def store(self, view: WorkloadView, tools: Iterable[types.Tool]) -> None:
        by_name = {t.name: t for t in tools}
        previous = self._listings.get(view.name)
        self._listings[view.name] = _Listing(by_name, view.status_since, self._clock())
        self._failures.pop(view.name, None)
        if previous is None or previous.tools != by_name:
            self._rebuild_names()
            if self._store is not None:
                self._store.save(view.name, by_name.values())

    def fetch_failed(self, view: WorkloadView) -> None:
        self._failures[view.name] = _FailedFetch(view.status_since, self._clock())

    def retain(self, names: Iterable[str]) -> None:
        """Forget every workload not in ``names`` (removed workloads lose their tools)."""
        keep = set(names)
        gone = [name for name in self._listings if name not in keep]
        for name in gone:
            del self._listings[name]
            if self._store is not None:
                self._store.delete(name)
        for name in [name for name in self._failures if name not in keep]:
            del self._failures[name]
        if gone:
            self._rebuild_names()

    def _rebuild_names(self) -> None:
        self._names = NameTable(
            Route(workload, tool) for workload, listing in self._listings.items() for tool in listing.tools
        )

    # ------------------------------------------------------------------- lookups --
    def tool_names(self, workload: str) -> frozenset[str]:
        listing = self._listings.get(workload)
        return frozenset(listing.tools) if listing is not None else frozenset()

    def route(self, exposed: str) -> Route | None:
        """The backend tool behind an exposed name, for any cached workload (listed or not)."""
        return self._names.route(exposed)

    def tool(self, route: Route) -> types.Tool | None:
        listing = self._listings.get(route.workload)
        return listing.tools.get(route.tool) if listing is not None else None

    def exposed_tools(self, views: Iterable[WorkloadView]) -> list[types.Tool]:
        """The aggregated listing: every listed workload's cached tools, renamed and labelled."""
        tools: list[types.Tool] = []
        for view in views:
            listing = self._listings.get(view.name)
            if listing is None or not behaviour_of(view).listed:
                continue
            for tool in listing.tools.values():
                tools.append(_exposed(tool, view.name, self._names.name(Route(view.name, tool.name))))
        return tools


def _exposed(tool: types.Tool, workload: str, name: str) -> types.Tool:
    """``tool`` as the aggregate lists it: namespaced name, description and title naming its workload."""
    description = f"[{workload}] {tool.description}" if tool.description else f"[{workload}] {tool.name}"
    update: dict[str, object] = {"name": name, "description": description}
    if tool.title:
        update["title"] = f"{workload}: {tool.title}"
    return tool.model_copy(update=update)
