"""Moved to :mod:`mcpkeeper.net`; the names its last importers use stay importable from here."""

from mcpkeeper.net import InLoopServer, PortInUseError, bind_loopback, free_port

__all__ = ["InLoopServer", "PortInUseError", "bind_loopback", "free_port"]
