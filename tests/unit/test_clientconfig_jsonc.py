"""The JSON(C) splicer: edits change the entry and nothing else, comments and layout survive."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpkeeper.clientconfig.jsonc import JsoncError, append_to_array, loads, remove_member, set_member

ENTRY = {"type": "http", "url": "http://127.0.0.1:41234/mcp", "headers": {"Authorization": "Bearer x"}}

VSCODE_SETTINGS = """// VS Code user mcp.json, written by hand
{
    "servers": {
        "github": {
            "type": "http",
            "url": "https://api.githubcopilot.com/mcp/" // the official one
        },
        /* "old": {"url": "http://gone"} */
    },
    "inputs": [],
}
"""


def test_loads_reads_comments_trailing_commas_and_a_bom() -> None:
    text = '\ufeff{ // c\n "a": [1, 2.5e3, true, null,], /* x */ "b": {"c": "d\\u00e9\\"",},}'
    assert loads(text) == {"a": [1, 2500.0, True, None], "b": {"c": 'dé"'}}


def test_an_empty_document_is_an_empty_object() -> None:
    assert loads("") == {}
    assert loads("  \n// nothing yet\n") == {}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"a": 1 /* open', "line 1"),
        ('{\n  "a": tru\n}', "line 2, column 8"),
        ('{"a" 1}', "expected ':'"),
        ('{"a": 1} {"b": 2}', "after the JSON document"),
        ('{"a": "unterminated}', "unterminated string"),
        ("[" * 300 + "]" * 300, "nested too deeply"),
    ],
)
def test_unreadable_text_is_a_one_line_error_saying_where(text: str, where: str) -> None:
    with pytest.raises(JsoncError) as raised:
        loads(text)
    assert where in str(raised.value)
    assert "\n" not in str(raised.value)


def test_setting_an_entry_keeps_every_comment_and_line_of_a_vscode_file() -> None:
    edited = set_member(VSCODE_SETTINGS, ["servers"], "mine", ENTRY)
    assert loads(edited) == {
        **loads(VSCODE_SETTINGS),
        "servers": {**loads(VSCODE_SETTINGS)["servers"], "mine": ENTRY},
    }
    for line in VSCODE_SETTINGS.splitlines():  # the old lines are all there, in order
        assert line in edited
    assert '        "mine": {\n            "type": "http",' in edited  # the file's 4-space indentation
    assert '/* "old": {"url": "http://gone"} */\n        "mine"' in edited  # after the comment, not before
    assert set_member(edited, ["servers"], "mine", ENTRY) == edited  # idempotent


def test_removing_an_entry_gives_back_the_original_text() -> None:
    edited = set_member(VSCODE_SETTINGS, ["servers"], "mine", ENTRY)
    assert remove_member(edited, ["servers"], "mine") == VSCODE_SETTINGS
    assert remove_member(VSCODE_SETTINGS, ["servers"], "absent") == VSCODE_SETTINGS


def test_a_comment_after_the_last_member_stays_with_it() -> None:
    edited = set_member('{\n  "a": 1 // about a\n}\n', [], "b", 2)
    assert edited == '{\n  "a": 1, // about a\n  "b": 2\n}\n'


def test_a_trailing_comma_style_is_kept() -> None:
    assert set_member('{\n\t"a": 1,\n}\n', [], "b", [1]) == '{\n\t"a": 1,\n\t"b": [\n\t\t1\n\t],\n}\n'


def test_missing_containers_are_created_and_null_is_replaced() -> None:
    assert loads(set_member('{"theme": "dark"}', ["mcpServers"], "x", ENTRY)) == {
        "theme": "dark",
        "mcpServers": {"x": ENTRY},
    }
    assert loads(set_member('{\n  "mcpServers": null\n}', ["mcpServers"], "x", 1)) == {"mcpServers": {"x": 1}}
    assert loads(set_member("", ["mcpServers"], "x", 1)) == {"mcpServers": {"x": 1}}


def test_a_one_line_object_stays_on_one_line() -> None:
    assert set_member('{"a": 1}', [], "b", {"c": 2}) == '{"a": 1, "b": {"c": 2}}'


def test_a_duplicate_key_is_replaced_where_json_parse_reads_it() -> None:
    edited = set_member('{"a": 1, "a": 2}', [], "a", 3)
    assert loads(edited) == {"a": 3}
    assert remove_member('{\n  "a": 1,\n  "a": 2\n}', [], "a") == "{\n}"


def test_a_root_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(JsoncError, match="does not hold a JSON object"):
        set_member("[1, 2]", ["servers"], "x", 1)
    with pytest.raises(JsoncError, match="not an object"):
        set_member('{"servers": [1]}', ["servers"], "x", 1)


def test_appending_to_an_array_keeps_the_others() -> None:
    text = '{\n  "inputs": [\n    {"id": "a"}\n  ]\n}\n'
    edited = append_to_array(text, [], "inputs", {"id": "b"})
    assert loads(edited) == {"inputs": [{"id": "a"}, {"id": "b"}]}
    assert '    {"id": "a"},\n' in edited
    assert loads(append_to_array('{"servers": {}}', [], "inputs", 1)) == {"servers": {}, "inputs": [1]}
    assert loads(append_to_array('{"inputs": []}', [], "inputs", 1)) == {"inputs": [1]}


# -- any layout: the result always holds exactly the intended document ------------------------------

_keys = st.text(alphabet=string.ascii_letters + "-_ é", min_size=1, max_size=8)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=10))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=10,
)
_documents = st.dictionaries(_keys, _values, max_size=5)


def _layout(document: dict[str, Any], indent: int | str | None, comments: bool) -> str:
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    if comments:
        text = "// leading comment\n" + text.replace("\n", " /* c */\n", 2) + "\n// trailing\n"
    return text


@settings(max_examples=300, deadline=None)
@given(
    document=_documents,
    servers=st.dictionaries(_keys, _values, max_size=3),
    key=_keys,
    value=_values,
    indent=st.sampled_from([None, 2, 4, "\t"]),
    comments=st.booleans(),
)
def test_set_then_remove_changes_exactly_one_entry(
    document: dict[str, Any], servers: dict[str, Any], key: str, value: Any, indent: Any, comments: bool
) -> None:
    document = {**document, "mcpServers": servers}
    text = _layout(document, indent, comments)
    edited = set_member(text, ["mcpServers"], key, value)
    assert loads(edited) == {**document, "mcpServers": {**servers, key: value}}
    assert set_member(edited, ["mcpServers"], key, value) == edited
    removed = remove_member(edited, ["mcpServers"], key)
    expected = {k: v for k, v in servers.items() if k != key}
    assert loads(removed) == {**document, "mcpServers": expected}
    if comments:
        assert "// leading comment" in removed and "// trailing" in removed
