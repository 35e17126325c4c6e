"""Exit statuses shared by processes that do not share imports (daemon, CLI, service units).

Defined once here, a module that imports nothing, so that the light modules (the CLI's
error codes, the service unit writer) need not import the HTTP client to agree with it.
"""

from __future__ import annotations

__all__ = ["EXIT_ALREADY_RUNNING"]

#: Exit status of ``mcpkeeper serve`` when another daemon already serves the same home
#: (not 3, which the CLI uses for "no such workload"). The service units treat it as success
#: and do not restart on it; the CLI starting a daemon takes it as "the other one answers".
EXIT_ALREADY_RUNNING = 5
