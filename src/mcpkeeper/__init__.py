"""mcpkeeper: keeps OAuth-protected remote MCP servers usable from MCP clients."""

__version__ = "0.1.0"
