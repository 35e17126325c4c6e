"""Namespaced tool names: ``<workload>__<tool>``, always valid MCP tool names.

MCP tool names are 1-128 characters from ``A-Z a-z 0-9 _ - .``. Workload names already
use that charset; a backend's tool name may not (or may be long), so it is sanitised.
A name that had to be changed gets a short hash of the original appended, so two tools
whose names differ only in characters that were replaced still get different names.

Names are looked up in a table built from the current listing, never parsed back: a
workload called ``a__b`` with tool ``c`` and a workload ``a`` with tool ``b__c`` would
otherwise both be ``a__b__c``. :class:`NameTable` resolves such a clash (rare, but
possible) deterministically by hashing the later one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SEPARATOR", "TOOL_NAME_MAX", "NameTable", "Route", "exposed_name", "sanitise"]

SEPARATOR = "__"
TOOL_NAME_MAX = 128
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.\-]")
_HASH_LEN = 8


@dataclass(frozen=True, slots=True)
class Route:
    """Where an exposed tool lives: the workload and the tool's name on that backend."""

    workload: str
    tool: str


def sanitise(text: str) -> str:
    """``text`` with every character outside the MCP tool-name charset replaced by ``_``."""
    return _NOT_ALLOWED.sub("_", text) or "_"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_HASH_LEN]


def _with_hash(name: str, *parts: str) -> str:
    return f"{name[: TOOL_NAME_MAX - _HASH_LEN - 1]}_{_digest(*parts)}"


def exposed_name(workload: str, tool: str) -> str:
    """The name the aggregated endpoint lists for ``tool`` of ``workload``.

    Unchanged tool names give the readable ``<workload>__<tool>``; a sanitised or
    over-long one gets a hash of the original so it stays unique within its workload.
    """
    name = f"{sanitise(workload)}{SEPARATOR}{sanitise(tool)}"
    if sanitise(tool) == tool and len(name) <= TOOL_NAME_MAX:
        return name
    return _with_hash(name, workload, tool)


class NameTable:
    """Exposed name -> :class:`Route` for one listing, clashes resolved deterministically."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._by_name: dict[str, Route] = {}
        self._by_route: dict[Route, str] = {}
        for route in sorted(routes, key=lambda r: (r.workload, r.tool)):
            self._add(route)

    def _add(self, route: Route) -> None:
        if route in self._by_route:
            return
        name = exposed_name(route.workload, route.tool)
        if name in self._by_name:  # a clash: the later route (in sorted order) yields
            name = _with_hash(name, route.workload, route.tool)
        self._by_name[name] = route
        self._by_route[route] = name

    def route(self, name: str) -> Route | None:
        return self._by_name.get(name)

    def name(self, route: Route) -> str:
        return self._by_route[route]

    def __len__(self) -> int:
        return len(self._by_name)
