"""Workload health -> what the aggregated endpoint does with its tools (architecture.md §4).

==================  ========  ===========================================  =========
health              listed    tools/call                                   fetched
==================  ========  ===========================================  =========
healthy             yes       forwarded                                    yes
degraded            cached    forwarded: the proxy answers at once, with    no
                              ``503`` + ``Retry-After`` while no token is
                              valid (-> tool error with ``retry_after``),
                              or serves it with a still-valid token
unauthenticated     cached    refused: "run ``mcpkeeper login NAME``"       no
unknown (starting)  cached    forwarded (a failure is a tool error)         no
unhealthy           no        refused: not running                         no
==================  ========  ===========================================  =========

"cached" means the tools last fetched while the workload was healthy: a client keeps
seeing a stable tool list through an auth outage, and a refused call says why and when
to come back instead of the tool silently vanishing.

Why a degraded workload's calls still go to its proxy rather than being refused here:
the proxy's answer costs no upstream request (the monitor fails fast while retrying),
and the request is what the monitor counts as *demand* (architecture.md §3): it makes the next
refresh attempt come sooner, and the ``Retry-After`` it answers says when. Refusing in
the vMCP would leave a workload that only vMCP clients use waiting for the slow
background tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcpkeeper.vmcp.view import WorkloadView
from mcpkeeper.workloads.health import Health

__all__ = ["Behaviour", "behaviour_of"]


@dataclass(frozen=True, slots=True)
class Behaviour:
    listed: bool
    """Its (cached) tools appear in tools/list."""
    forward: bool
    """A tools/call is sent to the backend (else refused at once with a tool error)."""
    fetch: bool
    """Its tool list may be (re)fetched from the backend now."""


_LISTED_FORWARDED = Behaviour(listed=True, forward=True, fetch=False)

_BY_HEALTH: dict[Health, Behaviour] = {
    Health.HEALTHY: Behaviour(listed=True, forward=True, fetch=True),
    Health.DEGRADED: _LISTED_FORWARDED,
    Health.UNAUTHENTICATED: Behaviour(listed=True, forward=False, fetch=False),
    Health.UNKNOWN: _LISTED_FORWARDED,
    Health.UNHEALTHY: Behaviour(listed=False, forward=False, fetch=False),
}


def behaviour_of(view: WorkloadView) -> Behaviour:
    """The behaviour for ``view``'s health; see the module table."""
    return _BY_HEALTH[view.health]
