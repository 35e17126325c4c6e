"""Workload health -> what the aggregated endpoint does with its tools (DESIGN §4).

==================  ========  ===========================================  =========
health              listed    tools/call                                   fetched
==================  ========  ===========================================  =========
healthy             yes       forwarded                                    yes
degraded            cached    refused at once with ``retry_after``,         no
                              unless the access token is still valid
                              (the proxy can still serve it: forwarded)
unauthenticated     cached    refused: "run ``mcpkeeper login NAME``"       no
unknown (starting)  cached    forwarded (a failure is a tool error)         no
unhealthy           no        refused: not running                         no
==================  ========  ===========================================  =========

"cached" means the tools last fetched while the workload was healthy: a client keeps
seeing a stable tool list through an auth outage, and a refused call says why and when
to come back instead of the tool silently vanishing.
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
_LISTED_REFUSED = Behaviour(listed=True, forward=False, fetch=False)

_BY_HEALTH: dict[Health, Behaviour] = {
    Health.HEALTHY: Behaviour(listed=True, forward=True, fetch=True),
    Health.DEGRADED: _LISTED_REFUSED,
    Health.UNAUTHENTICATED: _LISTED_REFUSED,
    Health.UNKNOWN: _LISTED_FORWARDED,
    Health.UNHEALTHY: Behaviour(listed=False, forward=False, fetch=False),
}


def behaviour_of(view: WorkloadView) -> Behaviour:
    """The behaviour for ``view``'s health; see the module table."""
    if view.health is Health.DEGRADED and view.token_usable:
        # auth_retrying with an access token that is still valid: the proxy serves calls
        # with it until it expires, so refusing them would only hurt.
        return _LISTED_FORWARDED
    return _BY_HEALTH[view.health]
