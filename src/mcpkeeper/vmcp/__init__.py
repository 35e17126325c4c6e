"""The aggregated MCP endpoint ("vMCP"): one MCP server exposing every workload's tools.

A user points one client at ``http://127.0.0.1:<port>/mcp`` instead of one URL per
workload. Tools are namespaced ``<workload>__<tool>`` (:mod:`.names`); each call goes
through the workload's *local proxy*, so token injection, the 503 answers and the single
refresher per workload are reused and this package never sees a token.

Modules, bottom up: :mod:`.names` (tool names), :mod:`.policy` (health -> behaviour),
:mod:`.results` (tool error results), :mod:`.settings` (environment), :mod:`.runfile`
(``<home>/run/vmcp.json``), :mod:`.directory` (the workloads, seen through the manager),
:mod:`.backend` (one MCP client per workload), :mod:`.catalog` (tool cache),
:mod:`.aggregator` (list and call), :mod:`.server` (the MCP server over HTTP) and
:mod:`.service` (what the daemon starts).

Nothing is imported here on purpose: the CLI reads :mod:`.runfile` and must not pay for
importing the MCP SDK.
"""
