"""Namespaced tool names: ``<workload>__<tool>``, always valid MCP tool names, never ambiguous.

MCP tool names are 1-128 characters from ``A-Z a-z 0-9 _ - .``. The exposed name of a
backend tool depends on its workload and its own name only (never on which other
workloads exist), and two different (workload, tool) pairs never share one, so a name a
client learnt keeps meaning the same tool. Plainly ``<workload>__<tool>`` would not do:
workload ``a`` with tool ``b__c`` and workload ``a__b`` with tool ``c`` would both be
``a__b__c``. So the name is ``W__T`` where the first ``__`` always ends ``W``:

* ``W`` is the workload name unchanged, unless it contains ``__`` or ends with ``_``;
  then it is ``-`` followed by the name with every ``_`` written ``_-`` (workload names
  start with a letter or digit, so a leading ``-`` marks this form, and ``_-`` never
  makes ``__``): ``a__b`` → ``-a_-_-b``;
* ``T`` is the tool name unchanged when it is already a valid name not starting with
  ``.``; otherwise ``.`` followed by the name with every byte outside ``A-Z a-z 0-9 _ -``
  (``.`` included) written ``.XX`` in hex: ``search files`` → ``.search.20files``;
* a name that would be longer than 128 characters becomes ``W'__..<hash>.<readable>``,
  cut to 128: ``W'`` a prefix of ``W``, the hash (80 bits) of the workload and tool names.
  ``..`` never starts a ``T`` of the forms above, so these names cannot meet them.

Everything but the hashed form can be decoded back, which is what makes the mapping
injective; ``tests/unit/test_vmcp_names.py`` checks it with hypothesis.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SEPARATOR", "TOOL_NAME_MAX", "NameTable", "Route", "exposed_name", "sanitise"]

SEPARATOR = "__"
TOOL_NAME_MAX = 128
_VALID = re.compile(r"[A-Za-z0-9_.\-]+")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.\-]")
_KEPT_IN_ESCAPES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_HASHED_MARK = ".."
_HASH_LEN = 20


@dataclass(frozen=True, slots=True)
class Route:
    """Where an exposed tool lives: the workload and the tool's name on that backend."""

    workload: str
    tool: str


def sanitise(text: str) -> str:
    """``text`` with every character outside the MCP tool-name charset replaced by ``_``."""
    return _NOT_ALLOWED.sub("_", text) or "_"


def _workload_part(workload: str) -> str:
    if SEPARATOR not in workload and not workload.endswith("_"):
        return workload
    return "-" + workload.replace("_", "_-")


def _tool_part(tool: str) -> str:
    if _VALID.fullmatch(tool) and not tool.startswith("."):
        return tool
    escaped = "".join(chr(byte) if byte in _KEPT_IN_ESCAPES else f".{byte:02X}" for byte in tool.encode())
    return "." + escaped


def _hashed(workload_part: str, workload: str, tool: str) -> str:
    digest = hashlib.sha256(f"{workload}\0{tool}".encode()).hexdigest()[:_HASH_LEN]
    tail = f"{SEPARATOR}{_HASHED_MARK}{digest}"
    # A prefix of W has no "__"; without a trailing "_" the first "__" still ends it.
    head = workload_part[: TOOL_NAME_MAX - len(tail)].rstrip("_")
    return f"{head}{tail}.{sanitise(tool)}"[:TOOL_NAME_MAX]


def exposed_name(workload: str, tool: str) -> str:
    """The name the aggregated endpoint lists for ``tool`` of ``workload`` (see the module docstring)."""
    workload_part = _workload_part(workload)
    name = f"{workload_part}{SEPARATOR}{_tool_part(tool)}"
    if len(name) <= TOOL_NAME_MAX:
        return name
    return _hashed(workload_part, workload, tool)


class NameTable:
    """Exposed name -> :class:`Route` for one listing (the names come from :func:`exposed_name`)."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._by_name: dict[str, Route] = {}
        self._by_route: dict[Route, str] = {}
        for route in sorted(routes, key=lambda r: (r.workload, r.tool)):
            name = exposed_name(route.workload, route.tool)
            # Only two over-long names whose 80-bit hashes collide could meet here; the
            # first in sorted order is the one the name reaches.
            self._by_name.setdefault(name, route)
            self._by_route[route] = name

    def route(self, name: str) -> Route | None:
        return self._by_name.get(name)

    def name(self, route: Route) -> str:
        return self._by_route[route]

    def __len__(self) -> int:
        return len(self._by_name)
