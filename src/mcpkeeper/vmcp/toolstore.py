"""The last tool list of each workload, kept on disk: ``<home>/run/vmcp-tools/<name>.json``.

So that a daemon restarted during an auth outage still advertises the tools of a
workload it cannot reach yet (degraded backends keep their tools, architecture.md §4), instead of
advertising fewer tools until the outage ends. Tool definitions are not secrets; the
files are 0600 in a 0700 directory anyway, written atomically, and one that cannot be
read is ignored (the next successful fetch replaces it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import mcp_types as types
from pydantic import TypeAdapter, ValidationError

from mcpkeeper.state._atomic import atomic_write_bytes
from mcpkeeper.state.names import names_in, validate_name
from mcpkeeper.state.paths import ensure_private_dir

__all__ = ["ToolStore"]

log = logging.getLogger(__name__)

_SUFFIX = ".json"
_TOOLS = TypeAdapter(list[types.Tool])


class ToolStore:
    def __init__(self, home: Path) -> None:
        self.directory = home / "run" / "vmcp-tools"

    def load_all(self) -> dict[str, list[types.Tool]]:
        """Every readable stored list, by workload name."""
        listings: dict[str, list[types.Tool]] = {}
        for name in names_in(self.directory, _SUFFIX):
            try:
                listings[name] = _TOOLS.validate_json(self._path(name).read_bytes())
            except (OSError, ValidationError) as exc:
                log.warning(
                    "vmcp: ignoring the stored tools of workload %s: %s", name, str(exc).splitlines()[0]
                )
        return listings

    def save(self, name: str, tools: Iterable[types.Tool]) -> None:
        data = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
        try:
            ensure_private_dir(self.directory)
            atomic_write_bytes(self._path(name), json.dumps(data, indent=1).encode() + b"\n")
        except OSError as exc:  # a cache: losing it costs a fetch, never a call
            log.warning("vmcp: cannot store the tools of workload %s: %s", name, exc)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        return names_in(self.directory, _SUFFIX)

    def _path(self, name: str) -> Path:
        return self.directory / f"{validate_name(name)}{_SUFFIX}"
