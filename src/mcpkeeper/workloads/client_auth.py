"""When a workload's proxy (and the aggregated endpoint) require the local client token.

The rule, in one place: a listener requires ``Authorization: Bearer <client token>``
(:mod:`mcpkeeper.state.client_token`) when its workload was created with
``--client-token``, when ``MCPKEEPER_CLIENT_AUTH=on`` asks it of every listener, and
always when it listens anywhere but on loopback (today every listener is on loopback;
the rule is here so that a future non-loopback listener cannot forget it).

What it protects against: other accounts on the same machine, which can reach loopback
ports and would otherwise use your tokens through your proxies. It does not protect
against programs running as you (they can read the token file, as they can read your
tokens) or against root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["CLIENT_AUTH_ENV", "LOOPBACK", "client_auth_required", "globally_required"]

#: ``mcpkeeper.net.LOOPBACK``, restated: importing ``mcpkeeper.net`` starts uvicorn's imports,
#: and ``connect`` and ``run`` ask this module (a unit test keeps the two equal).
LOOPBACK = "127.0.0.1"

CLIENT_AUTH_ENV = "MCPKEEPER_CLIENT_AUTH"
_ON = frozenset({"on", "1", "true", "yes"})


def globally_required(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``MCPKEEPER_CLIENT_AUTH`` turns client authentication on for every listener."""
    env = os.environ if environ is None else environ
    return env.get(CLIENT_AUTH_ENV, "").strip().lower() in _ON


def client_auth_required(
    requested: bool, *, host: str = LOOPBACK, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether a listener on ``host`` for a workload that ``requested`` it requires the client token."""
    return requested or globally_required(environ) or host != LOOPBACK
