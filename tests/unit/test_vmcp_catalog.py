"""The tool cache: when a workload's list is fetched again, and what the aggregate lists."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.vmcp.catalog import ToolCatalog
from mcpkeeper.vmcp.names import Route
from mcpkeeper.vmcp.toolstore import ToolStore
from mcpkeeper.vmcp.view import WorkloadView

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _view(
    name: str = "w", status: WorkloadStatus = WorkloadStatus.RUNNING, since: int = 0, **kw: Any
) -> WorkloadView:
    return WorkloadView(
        name=name,
        url="http://127.0.0.1:1/mcp",
        transport="streamable-http",
        status=status,
        status_since=_T0 + timedelta(seconds=since),
        **kw,
    )


def _tool(name: str, description: str | None = "Does it.", title: str | None = None) -> types.Tool:
    return types.Tool(name=name, description=description, title=title, input_schema={"type": "object"})


def _catalog(clock: _Clock) -> ToolCatalog:
    return ToolCatalog(max_age=60.0, retry_interval=5.0, clock=clock)


def test_a_healthy_workload_is_fetched_once_then_served_from_the_cache() -> None:
    clock, view = _Clock(), _view()
    catalog = _catalog(clock)
    assert catalog.needs_fetch(view)

    catalog.store(view, [_tool("echo")])
    clock.now += 59

    assert not catalog.needs_fetch(view)
    clock.now += 1
    assert catalog.needs_fetch(view)  # max age reached


def test_a_new_status_since_the_fetch_means_fetch_again() -> None:
    clock = _Clock()
    catalog = _catalog(clock)
    catalog.store(_view(since=0), [_tool("echo")])

    assert catalog.needs_fetch(_view(since=5))  # restarted, or running again after an outage


def test_only_healthy_workloads_are_fetched() -> None:
    catalog = _catalog(_Clock())
    for status in WorkloadStatus:
        assert catalog.needs_fetch(_view(status=status)) is (status is WorkloadStatus.RUNNING)


def test_a_failed_fetch_is_not_retried_at_once_unless_the_status_changes() -> None:
    clock, view = _Clock(), _view()
    catalog = _catalog(clock)
    catalog.fetch_failed(view)

    assert not catalog.needs_fetch(view)
    assert catalog.needs_fetch(_view(since=1))
    clock.now += 5
    assert catalog.needs_fetch(view)


def test_the_listing_is_namespaced_labelled_and_follows_health() -> None:
    catalog = _catalog(_Clock())
    catalog.store(_view("a"), [_tool("echo", title="Echo"), _tool("bare", description=None)])
    catalog.store(_view("b"), [_tool("echo")])
    views = [
        _view("a", WorkloadStatus.AUTH_RETRYING),  # degraded: cached tools stay listed
        _view("b", WorkloadStatus.STOPPED),  # not running: hidden
        _view("c"),  # nothing cached yet
    ]

    tools = {tool.name: tool for tool in catalog.exposed_tools(views)}

    assert set(tools) == {"a__echo", "a__bare"}
    assert tools["a__echo"].description == "[a] Does it."
    assert tools["a__echo"].title == "a: Echo"
    assert tools["a__bare"].description == "[a] bare"
    assert tools["a__echo"].input_schema == {"type": "object"}
    # A hidden workload's tools still resolve, so a call can say why it is refused.
    assert catalog.route("b__echo") == Route("b", "echo")


def test_a_removed_workload_is_forgotten() -> None:
    catalog = _catalog(_Clock())
    catalog.store(_view("a"), [_tool("echo")])
    catalog.store(_view("b"), [_tool("echo")])

    catalog.retain(["a"])

    assert catalog.route("b__echo") is None and catalog.tool_names("b") == frozenset()
    assert catalog.route("a__echo") == Route("a", "echo")
    assert catalog.tool(Route("a", "echo")) == _tool("echo")


def test_a_new_listing_replaces_the_old_one() -> None:
    catalog = _catalog(_Clock())
    catalog.store(_view(), [_tool("old")])
    catalog.store(_view(since=1), [_tool("new")])
    assert catalog.route("w__old") is None
    assert catalog.route("w__new") == Route("w", "new")
    assert catalog.tool_names("w") == {"new"}


def test_stored_lists_survive_a_new_catalog_and_are_fetched_again_when_healthy(tmp_path: Path) -> None:
    clock = _Clock()
    first = ToolCatalog(max_age=60.0, retry_interval=5.0, clock=clock, store=ToolStore(tmp_path))
    first.store(_view("a"), [_tool("echo", title="Echo")])

    second = ToolCatalog(max_age=60.0, retry_interval=5.0, clock=clock, store=ToolStore(tmp_path))

    degraded = _view("a", WorkloadStatus.AUTH_RETRYING)
    assert [t.name for t in second.exposed_tools([degraded])] == ["a__echo"]
    assert second.tool(Route("a", "echo")) == _tool("echo", title="Echo")
    assert not second.needs_fetch(degraded)
    assert second.needs_fetch(_view("a"))  # healthy: the stored list is only a stand-in


def test_a_list_is_written_only_when_it_changes_and_removed_with_its_workload(tmp_path: Path) -> None:
    store = ToolStore(tmp_path)
    catalog = ToolCatalog(max_age=60.0, retry_interval=5.0, clock=_Clock(), store=store)
    catalog.store(_view("a"), [_tool("echo")])
    path = store.directory / "a.json"
    assert path.stat().st_mode & 0o777 == 0o600
    path.unlink()

    catalog.store(_view("a", since=1), [_tool("echo")])
    assert not path.exists()  # unchanged: not written again
    catalog.store(_view("a", since=2), [_tool("echo"), _tool("add")])
    assert path.exists()

    catalog.retain([])
    assert not path.exists() and store.names() == []


def test_an_unreadable_stored_list_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = ToolStore(tmp_path)
    store.directory.mkdir(parents=True)
    (store.directory / "bad.json").write_text("{not json")
    (store.directory / "odd.json").write_text('[{"name": "x"}]')  # no inputSchema

    with caplog.at_level(logging.WARNING):
        catalog = ToolCatalog(max_age=60.0, retry_interval=5.0, clock=_Clock(), store=store)

    assert catalog.route("bad__x") is None and catalog.route("odd__x") is None
    assert "bad" in caplog.text and "odd" in caplog.text
