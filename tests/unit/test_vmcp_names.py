"""Namespaced tool names: readable when possible, always valid, never ambiguous."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpkeeper.vmcp.names import SEPARATOR, TOOL_NAME_MAX, NameTable, Route, exposed_name, sanitise

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


def test_workload_a_tool_b__c_and_workload_a__b_tool_c_get_different_names() -> None:
    # Plainly joined, both would be "a__b__c": one would shadow the other.
    assert exposed_name("a", "b__c") == "a__b__c"
    assert exposed_name("a__b", "c") == "-a_-_-b__c"
    table = NameTable([Route("a__b", "c"), Route("a", "b__c")])
    assert table.route("a__b__c") == Route("a", "b__c")
    assert table.route("-a_-_-b__c") == Route("a__b", "c")
    assert len(table) == 2


def test_a_name_does_not_depend_on_the_other_workloads() -> None:
    # A client that learnt a name keeps reaching the same tool when workloads come and go.
    alone = NameTable([Route("a__b", "c")])
    crowded = NameTable([Route("a__b", "c"), Route("a", "b__c"), Route("a_", "_b__c")])
    assert alone.name(Route("a__b", "c")) == crowded.name(Route("a__b", "c"))


# --- the mapping is injective: every name that is not hashed decodes back to its pair ------
_WORKLOAD_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", fullmatch=True)
# Few letters and many separators, so that clashes of the plain joining are common.
_TRICKY_WORKLOAD_NAMES = st.text(alphabet="ab_.-", min_size=1, max_size=12).map(lambda s: "a" + s)
_TOOL_NAMES = st.text(max_size=140) | st.text(alphabet="ab_.- /%", max_size=12)


def _decode(name: str) -> tuple[str, str]:
    """The (workload, tool) of a name that is not hashed: the inverse of ``exposed_name``."""
    workload_part, tool_part = name.split(SEPARATOR, 1)
    workload = workload_part[1:].replace("_-", "_") if workload_part.startswith("-") else workload_part
    if not tool_part.startswith("."):
        return workload, tool_part
    out, rest = bytearray(), tool_part[1:]
    while rest:
        if rest[0] == ".":
            out.append(int(rest[1:3], 16))
            rest = rest[3:]
        else:
            out.extend(rest[0].encode())
            rest = rest[1:]
    return workload, out.decode()


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(_WORKLOAD_NAMES | _TRICKY_WORKLOAD_NAMES, _TOOL_NAMES | _TRICKY_WORKLOAD_NAMES),
        min_size=1,
        max_size=8,
    )
)
def test_the_mapping_is_injective_and_valid(pairs: list[tuple[str, str]]) -> None:
    names = {pair: exposed_name(*pair) for pair in pairs}
    for (workload, tool), name in names.items():
        assert _VALID.fullmatch(name), name
        if SEPARATOR + ".." not in name:
            assert _decode(name) == (workload, tool)
    assert len(set(names.values())) == len(names)
    table = NameTable(Route(*pair) for pair in pairs)
    for pair, name in names.items():
        assert table.route(name) == Route(*pair)


def test_lookup_of_a_name_not_in_the_table_is_none() -> None:
    table = NameTable([Route("w", "echo")])
    assert table.route("w__echo") == Route("w", "echo")
    assert table.route("w__nope") is None
    assert table.route("echo") is None
