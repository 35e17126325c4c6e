"""What the workload manager refuses, in words the control API passes on unchanged.

Each error's message is one line written for the user; the API maps the class to an
HTTP status (404, 409, 400).
"""

from __future__ import annotations

__all__ = ["InvalidWorkloadError", "WorkloadError", "WorkloadExistsError", "WorkloadNotFoundError"]


class WorkloadError(Exception):
    """Base of the manager's refusals; ``str(exc)`` is the one-line message."""


class WorkloadNotFoundError(WorkloadError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no workload named {name!r} (see `mcpkeeper list --all`)")


class WorkloadExistsError(WorkloadError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a workload named {name!r} already exists")


class InvalidWorkloadError(WorkloadError):
    """Bad input: an invalid name or URL, a port that is taken."""
