"""Editing JSON (and JSON with comments) files in place, touching only what changes.

MCP clients keep their servers in a JSON file the user also edits by hand: VS Code's
``mcp.json`` allows ``//`` and ``/* */`` comments and trailing commas, Claude Code's
``~/.claude.json`` holds hundreds of unrelated keys in the app's own layout. Loading such
a file and dumping it again would drop every comment and reformat every line. So this
module parses the text into a tree that remembers where each value starts and ends, and
an edit splices new text into those places, in the file's own indentation: a diff of
the result shows the entry that changed and nothing else.

Every edit is checked before it is returned: the new text is parsed again and must hold
exactly the old document with that one change. An edit that would come out otherwise
(an unusual layout this splicer gets wrong) raises :class:`JsoncError` instead of
returning a damaged file.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JsoncError", "append_to_array", "loads", "remove_member", "set_member"]

_WS = " \t\r\n"
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_LITERALS = {"true": True, "false": False, "null": None}
_MAX_DEPTH = 200


class JsoncError(ValueError):
    """The text is not JSON(C), or an edit cannot be made safely; the message is one line."""


@dataclass
class _Node:
    start: int
    end: int
    value: Any = None


@dataclass
class _Member:
    key: str
    start: int  # the key's opening quote
    value: _Node


@dataclass
class _Object(_Node):
    members: list[_Member] = field(default_factory=list)

    def find(self, key: str) -> _Member | None:
        found = None
        for member in self.members:  # the last one wins, as JSON.parse does
            if member.key == key:
                found = member
        return found


@dataclass
class _Array(_Node):
    items: list[_Node] = field(default_factory=list)


# --------------------------------------------------------------------------- reading --


def loads(text: str) -> Any:
    """The value of a JSON(C) document; an empty document is ``{}``."""
    return _parse(text).value


def _parse(text: str) -> _Node:
    parser = _Parser(text)
    position = parser.skip(0)
    if position == len(text):
        return _Object(position, position, {})
    node = parser.value(position, 0)
    if parser.skip(node.end) != len(text):
        raise JsoncError(f"unexpected text after the JSON document ({parser.where(node.end)})")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text

    def where(self, position: int) -> str:
        line = self.text.count("\n", 0, position) + 1
        column = position - (self.text.rfind("\n", 0, position) + 1) + 1
        return f"line {line}, column {column}"

    def skip(self, position: int) -> int:
        """Past whitespace and comments."""
        text = self.text
        while position < len(text):
            if text[position] in _WS or text[position] == "\ufeff":
                position += 1
            elif text.startswith("//", position):
                end = text.find("\n", position)
                position = len(text) if end < 0 else end + 1
            elif text.startswith("/*", position):
                end = text.find("*/", position + 2)
                if end < 0:
                    raise JsoncError(f"unterminated comment ({self.where(position)})")
                position = end + 2
            else:
                break
        return position

    def value(self, position: int, depth: int) -> _Node:
        if depth > _MAX_DEPTH:
            raise JsoncError("the JSON document is nested too deeply")
        if position >= len(self.text):
            raise JsoncError("unexpected end of the JSON document")
        char = self.text[position]
        if char == "{":
            return self._object(position, depth)
        if char == "[":
            return self._array(position, depth)
        if char == '"':
            end, string = self._string(position)
            return _Node(position, end, string)
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, position):
                return _Node(position, position + len(word), literal)
        match = _NUMBER.match(self.text, position)
        if match is None:
            raise JsoncError(f"unexpected character {char!r} ({self.where(position)})")
        return _Node(position, match.end(), json.loads(match.group()))

    def _string(self, position: int) -> tuple[int, str]:
        """(end, value) of the string literal starting at ``position`` (json decodes the escapes)."""
        match = _STRING.match(self.text, position)
        if match is None:
            raise JsoncError(f"unterminated string ({self.where(position)})")
        try:
            value = json.loads(match.group())
        except json.JSONDecodeError as exc:
            raise JsoncError(f"bad string ({self.where(position)}): {exc.msg}") from None
        return match.end(), value

    def _object(self, start: int, depth: int) -> _Object:
        node = _Object(start, start)
        result: dict[str, Any] = {}
        position = self.skip(start + 1)
        while True:
            if position < len(self.text) and self.text[position] == "}":
                node.end, node.value, node.members = position + 1, result, node.members
                return node
            if position >= len(self.text) or self.text[position] != '"':
                raise JsoncError(f"expected a key or '}}' ({self.where(position)})")
            key_start = position
            position, key = self._string(position)
            position = self.skip(position)
            if position >= len(self.text) or self.text[position] != ":":
                raise JsoncError(f"expected ':' ({self.where(position)})")
            child = self.value(self.skip(position + 1), depth + 1)
            node.members.append(_Member(key, key_start, child))
            result[key] = child.value
            position = self.skip(child.end)
            if position < len(self.text) and self.text[position] == ",":
                position = self.skip(position + 1)
            elif position >= len(self.text) or self.text[position] != "}":
                raise JsoncError(f"expected ',' or '}}' ({self.where(position)})")

    def _array(self, start: int, depth: int) -> _Array:
        node = _Array(start, start)
        values: list[Any] = []
        position = self.skip(start + 1)
        while True:
            if position < len(self.text) and self.text[position] == "]":
                node.end, node.value = position + 1, values
                return node
            child = self.value(position, depth + 1)
            node.items.append(child)
            values.append(child.value)
            position = self.skip(child.end)
            if position < len(self.text) and self.text[position] == ",":
                position = self.skip(position + 1)
            elif position >= len(self.text) or self.text[position] != "]":
                raise JsoncError(f"expected ',' or ']' ({self.where(position)})")


# --------------------------------------------------------------------------- editing --


def set_member(text: str, path: Sequence[str], key: str, value: Any) -> str:
    """``text`` with ``<path>.<key>`` set to ``value`` (objects on the path created as needed)."""
    text = text if text.strip(_WS + "\ufeff") else "{}\n"
    root = _root_object(text)
    expected = copy.deepcopy(root.value)
    container = _dict_at(expected, path, create=True)
    if key in container and _same(container[key], value):
        return text
    container[key] = value
    new_text = _set(text, root, list(path), key, value)
    return _checked(new_text, expected)


def remove_member(text: str, path: Sequence[str], key: str) -> str:
    """``text`` without ``<path>.<key>``; unchanged when it is not there."""
    root = _root_object(text)
    expected = copy.deepcopy(root.value)
    container = _dict_at(expected, path, create=False)
    if container is None or key not in container:
        return text
    del container[key]
    new_text = text
    target = _object_at(root, path)
    while target is not None and (member := target.find(key)) is not None:  # duplicates too
        new_text = _remove(new_text, target, member)
        target = _object_at(_root_object(new_text), path)
    return _checked(new_text, expected)


def append_to_array(text: str, path: Sequence[str], key: str, item: Any) -> str:
    """``text`` with ``item`` appended to the array ``<path>.<key>`` (created if missing)."""
    text = text if text.strip(_WS + "\ufeff") else "{}\n"
    root = _root_object(text)
    expected = copy.deepcopy(root.value)
    container = _dict_at(expected, path, create=True)
    current = container.get(key)
    if current is not None and not isinstance(current, list):
        raise JsoncError(f"{'.'.join([*path, key])} is not an array")
    container[key] = [*(current or []), item]
    target = _object_at(root, path)
    member = target.find(key) if target is not None else None
    if member is None or not isinstance(member.value, _Array):
        return _checked(_set(text, root, list(path), key, [item]), expected)
    array = member.value
    unit = _indent_unit(text)
    if not array.items:
        outer = _line_indent(text, member.start)
        rendered = _render(item, outer + unit, unit)
        new_text = text[: array.start] + f"[\n{outer}{unit}{rendered}\n{outer}]" + text[array.end :]
    elif _same_line(text, array.start, array.items[-1].start):
        compact = json.dumps(item, ensure_ascii=False)
        new_text = _append_inline(text, array.items[-1].end, array.end - 1, compact)
    else:
        item_indent = _line_indent(text, array.items[-1].start)
        line = item_indent + _render(item, item_indent, unit)
        new_text = _append_line(text, array.items[-1].end, array.end - 1, line)
    return _checked(new_text, expected)


def _root_object(text: str) -> _Object:
    root = _parse(text)
    if not isinstance(root, _Object):
        raise JsoncError("the file does not hold a JSON object")
    return root


def _dict_at(data: dict[str, Any], path: Sequence[str], *, create: bool) -> Any:
    current: Any = data
    for part in path:
        if not isinstance(current, dict):
            raise JsoncError(f"{part!r} is inside a value that is not an object")
        if part not in current or current[part] is None:
            if not create:
                return None
            current[part] = {}
        current = current[part]
    if not isinstance(current, dict):
        raise JsoncError(f"{'.'.join(path)} is not an object")
    return current


def _object_at(root: _Object, path: Sequence[str]) -> _Object | None:
    node: _Node = root
    for part in path:
        if not isinstance(node, _Object):
            return None
        member = node.find(part)
        if member is None:
            return None
        node = member.value
    return node if isinstance(node, _Object) else None


def _set(text: str, root: _Object, path: list[str], key: str, value: Any) -> str:
    """Splice ``key: value`` into the deepest object of ``path`` that exists."""
    node = root
    missing: list[str] = []
    for index, part in enumerate(path):
        member = node.find(part)
        if member is None or member.value.value is None:
            if member is not None:  # "servers": null -> replace the null with the new object
                return _replace(text, member, _nest(path[index + 1 :], key, value))
            missing = path[index:]
            break
        if not isinstance(member.value, _Object):
            raise JsoncError(f"{'.'.join(path[: index + 1])} is not an object")
        node = member.value
    if missing:
        return _insert(text, node, missing[0], _nest(missing[1:], key, value))
    existing = node.find(key)
    if existing is not None:
        return _replace(text, existing, value)
    return _insert(text, node, key, value)


def _nest(path: Sequence[str], key: str, value: Any) -> Any:
    for part in reversed([*path, key]):
        value = {part: value}
    return value


def _replace(text: str, member: _Member, value: Any) -> str:
    indent = _indent_unit(text)
    rendered = _render(value, _line_indent(text, member.start), indent)
    return text[: member.value.start] + rendered + text[member.value.end :]


def _insert(text: str, node: _Object, key: str, value: Any) -> str:
    unit = _indent_unit(text)
    if not node.members:
        outer = _line_indent(text, node.start)
        line = f"{json.dumps(key)}: {_render(value, outer + unit, unit)}"
        inside = text[node.start + 1 : node.end - 1]
        keep = inside.rstrip(_WS) if inside.strip(_WS) else ""  # a comment inside the empty object
        body = f"{keep}\n{outer}{unit}{line}\n{outer}"
        return text[: node.start + 1] + body + text[node.end - 1 :]
    last = node.members[-1]
    if _same_line(text, node.start, last.start):  # a one-line object stays on one line
        entry = f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
        return _append_inline(text, last.value.end, node.end - 1, entry)
    member_indent = _line_indent(text, last.start)
    entry = f"{json.dumps(key)}: {_render(value, member_indent, unit)}"
    return _append_line(text, last.value.end, node.end - 1, member_indent + entry)


def _append_line(text: str, last_end: int, closing: int, line: str) -> str:
    """Add ``line`` after the last element (ending at ``last_end``) of the container closed at ``closing``.

    The comma goes right after that element (a trailing comma already there is kept, and
    the new line gets one too); the new line goes after anything that follows the element
    on its line, so a comment stays with the element it was written for.
    """
    after = text[last_end:closing]
    trailing_comma = after.lstrip(_WS).startswith(",")
    insert_at = last_end + len(after.rstrip(_WS))
    text = text[:insert_at] + "\n" + line + ("," if trailing_comma else "") + text[insert_at:]
    if not trailing_comma:
        text = text[:last_end] + "," + text[last_end:]
    return text


def _append_inline(text: str, last_end: int, closing: int, entry: str) -> str:
    after = text[last_end:closing]
    if after.lstrip(_WS).startswith(","):
        position = last_end + after.index(",") + 1
        return text[:position] + f" {entry}," + text[position:]
    return text[:last_end] + f", {entry}" + text[last_end:]


def _remove(text: str, node: _Object, member: _Member) -> str:
    index = next(i for i, m in enumerate(node.members) if m is member)
    start, end = member.start, member.value.end
    following = text[end : node.end - 1]
    comma = following.lstrip(_WS)
    if comma.startswith(","):
        end = end + (len(following) - len(comma)) + 1
    elif index > 0:  # the last member: take the comma before it
        previous = node.members[index - 1].value.end
        between = text[previous:start]
        position = between.find(",")
        if position >= 0:
            start = previous + position
    line_start = text.rfind("\n", 0, member.start) + 1
    if text[line_start : member.start].strip(" \t") == "" and start == member.start:
        start = line_start  # the member's own line(s) go, indentation included
        rest = text[end:]
        rest_stripped = rest.lstrip(" \t")
        if rest_stripped.startswith("\n"):
            end += len(rest) - len(rest_stripped) + 1
    return text[:start] + text[end:]


def _checked(new_text: str, expected: Any) -> str:
    try:
        got = loads(new_text)
    except JsoncError as exc:
        raise JsoncError(f"the edit would make the file unreadable ({exc}); not writing it") from None
    if not _same(got, expected):
        raise JsoncError("the edit would change more than the entry; not writing it")
    return new_text


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (``True`` is not ``1`` here, as it is in Python)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _render(value: Any, base_indent: str, unit: str) -> str:
    """``value`` as JSON at ``base_indent`` (nested lines indented by ``unit`` more)."""
    lines = json.dumps(value, indent=unit, ensure_ascii=False).split("\n")
    return "\n".join([lines[0], *(base_indent + line for line in lines[1:])])


def _indent_unit(text: str) -> str:
    """The file's indentation step: the first indented line's leading whitespace, else 2 spaces."""
    match = re.search(r"\n([ \t]+)[\"\[{}\]]", text)
    return match.group(1) if match else "  "


def _line_indent(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    prefix = text[line_start:position]
    return prefix[: len(prefix) - len(prefix.lstrip(" \t"))]


def _same_line(text: str, a: int, b: int) -> bool:
    return "\n" not in text[a:b]
