"""Namespaced tool names: readable when possible, always valid, never ambiguous."""

from __future__ import annotations

import re

import pytest

from mcpkeeper.vmcp.names import TOOL_NAME_MAX, NameTable, Route, exposed_name, sanitise

_VALID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def test_a_plain_tool_name_is_workload_double_underscore_tool() -> None:
    assert exposed_name("github", "create_issue") == "github__create_issue"
    assert exposed_name("my-server.v2", "get.item-1") == "my-server.v2__get.item-1"


@pytest.mark.parametrize("tool", ["search files", "ünïcode", "a/b", "x" * 200, "", "emoji🙂"])
def test_any_tool_name_becomes_a_valid_mcp_tool_name(tool: str) -> None:
    name = exposed_name("w" * 63, tool)
    assert _VALID.fullmatch(name), name
    assert len(name) <= TOOL_NAME_MAX


def test_names_that_differ_only_in_replaced_characters_stay_distinct() -> None:
    assert sanitise("a b") == sanitise("a/b") == "a_b"
    names = {exposed_name("w", "a b"), exposed_name("w", "a/b"), exposed_name("w", "a_b")}
    assert len(names) == 3
    assert exposed_name("w", "a_b") == "w__a_b"  # an already valid name is left readable


def test_long_names_are_cut_with_a_hash_and_stay_distinct() -> None:
    first, second = exposed_name("w", "t" * 150 + "1"), exposed_name("w", "t" * 150 + "2")
    assert len(first) == len(second) == TOOL_NAME_MAX
    assert first != second


def test_mapping_is_deterministic() -> None:
    assert exposed_name("w", "a b") == exposed_name("w", "a b")
    routes = [Route("b", "x"), Route("a", "y")]
    assert NameTable(routes).name(Route("a", "y")) == NameTable(reversed(routes)).name(Route("a", "y"))


def test_a_clash_between_workloads_is_resolved_not_merged() -> None:
    # Workload "a__b" with tool "c" and workload "a" with tool "b__c" would both be "a__b__c".
    table = NameTable([Route("a__b", "c"), Route("a", "b__c")])

    first, second = table.name(Route("a", "b__c")), table.name(Route("a__b", "c"))

    assert first == "a__b__c"  # the first in sorted order keeps the readable name
    assert second != first and _VALID.fullmatch(second)
    assert table.route(first) == Route("a", "b__c")
    assert table.route(second) == Route("a__b", "c")
    assert len(table) == 2


def test_lookup_of_a_name_not_in_the_table_is_none() -> None:
    table = NameTable([Route("w", "echo")])
    assert table.route("w__echo") == Route("w", "echo")
    assert table.route("w__nope") is None
    assert table.route("echo") is None
