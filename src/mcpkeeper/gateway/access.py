"""Which callers may use which workload's token: the gateway's allow-list.

A JSON file (``--allow FILE``) mapping a workload name to the callers allowed to use it;
the key ``"*"`` applies to every workload and the caller ``"*"`` means any authenticated
caller::

    {"notes": ["alice", "ci-bot"], "tickets": ["*"], "*": ["admin"]}

Nothing listed, nothing allowed: a workload absent from the file (and from ``"*"``) is
refused to every caller (403), so a new workload is never exposed by accident. Every
caller shares the workload's one upstream login (per-user grants are out of scope).
"""

from __future__ import annotations

import json
from pathlib import Path

from mcpkeeper.gateway.inbound import InboundConfigError

__all__ = ["AllowList"]

_ANY = "*"


class AllowList:
    def __init__(self, rules: dict[str, frozenset[str]]) -> None:
        self._rules = rules

    @classmethod
    def from_file(cls, path: Path) -> AllowList:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InboundConfigError(f"cannot read the allow-list {path}: {exc}") from None
        if not isinstance(data, dict):
            raise InboundConfigError(f"the allow-list {path} must be a JSON object: workload -> [callers]")
        rules: dict[str, frozenset[str]] = {}
        for workload, callers in data.items():
            if not isinstance(callers, list) or not all(isinstance(c, str) and c for c in callers):
                raise InboundConfigError(
                    f"the allow-list {path}: {workload!r} must map to a list of caller names"
                )
            rules[str(workload)] = frozenset(callers)
        return cls(rules)

    def allows(self, caller: str, workload: str) -> bool:
        for key in (workload, _ANY):
            callers = self._rules.get(key, frozenset())
            if caller in callers or _ANY in callers:
                return True
        return False
