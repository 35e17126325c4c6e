"""``mcpkeeper serve``: the daemon in the foreground (what the CLI otherwise starts in the background)."""

from __future__ import annotations

__all__ = ["serve"]


def serve() -> None:
    """Run the daemon in the foreground: control API and every workload (Ctrl-C stops it)."""
    from mcpkeeper.daemon import main as daemon_main

    daemon_main()
