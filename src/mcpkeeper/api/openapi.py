"""A hand-written OpenAPI 3.1 description of the control API (served at ``/openapi.json``).

Hand-written because the API is small and its JSON shapes are plain dicts built in
:mod:`.views`; a generator would need models duplicating them. ``test_api_app`` checks
that every route of the app is described here, and ``test_api_openapi_property`` sends
random requests to a real app and checks every answer against this description, so
the two cannot drift apart.

Workloads carry ToolHive's ``core.Workload`` fields with its names and meanings, and
ours beside them (README, "HTTP API").
"""

from __future__ import annotations

from typing import Any

from mcpkeeper import __version__
from mcpkeeper.api.paths import API_PREFIX
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.workloads.health import Health

__all__ = ["OPENAPI"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "bad input (name, URL, port in use, body)"),
    "404": _json(_ref("Error"), "no such workload"),
}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_INFO_RESPONSE = {"200": _json(_ref("WorkloadInfo"), "the workload after the action"), **_ERRORS}


def _action(summary: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "parameters": _NAME, "responses": _INFO_RESPONSE}}


_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
_OPT_NUM = {"type": ["number", "null"]}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_LOGIN_STATES = ["pending", "succeeded", "failed", "not_required"]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mcpkeeper control API", "version": __version__},
    "paths": {
        f"{API_PREFIX}/health": {
            "get": {"summary": "Daemon liveness", "responses": {"200": _json(_ref("Health"), "alive")}}
        },
        f"{API_PREFIX}/workloads": {
            "get": {
                "summary": "List workloads (stopped/removing hidden unless all=true)",
                "parameters": [
                    {"name": "all", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "group",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "ToolHive's group filter: 'default' is the only group",
                    },
                ],
                "responses": {
                    "404": _json(_ref("Error"), "no such group (ToolHive's answer)"),
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"workloads": {"type": "array", "items": _ref("WorkloadInfo")}},
                        },
                        "workloads",
                    ),
                },
            },
            "post": {
                "summary": "Create and start a workload (its login must be stored first unless auth=false)",
                "requestBody": {"content": {"application/json": {"schema": _ref("CreateWorkload")}}},
                "responses": {
                    "201": _json(_ref("WorkloadInfo"), "created"),
                    "409": _json(_ref("Error"), "name exists"),
                    "413": _json(_ref("Error"), "body over 64 kB"),
                    "501": _json(_ref("Error"), "login=true, but this daemon runs no logins"),
                    **_ERRORS,
                },
            },
        },
        f"{API_PREFIX}/workloads/{{name}}": {
            "get": {
                "summary": "One workload with its token monitor state and status history",
                "parameters": _NAME,
                "responses": {"200": _json(_ref("WorkloadDetail"), "the workload"), **_ERRORS},
            },
            "delete": {
                "summary": "Stop and forget a workload (config, status, history, secrets)",
                "parameters": _NAME,
                "responses": {"204": {"description": "removed"}, **_ERRORS},
            },
        },
        f"{API_PREFIX}/workloads/{{name}}/status": {
            "get": {
                "summary": "The workload's status (ToolHive's workloadStatusResponse, with more beside it)",
                "parameters": _NAME,
                "responses": {"200": _json(_ref("WorkloadStatus"), "the status"), **_ERRORS},
            }
        },
        f"{API_PREFIX}/workloads/{{name}}/logs": {
            "get": {
                "summary": "The workload's log: the last lines (1000 by default, as ToolHive), then with "
                "follow=true every new line as it is written (the response stays open, up to an hour)",
                "parameters": [
                    *_NAME,
                    {"name": "follow", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "tail",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 100000},
                    },
                ],
                "responses": {"200": {"description": "log lines", "content": _TEXT}, **_ERRORS},
            }
        },
        f"{API_PREFIX}/workloads/{{name}}/login": {
            "post": {
                "summary": "Start a browser login in the daemon (or join the waiting one) and report its "
                "authorization URL; the daemon never opens a browser, the caller does",
                "parameters": _NAME,
                "responses": {
                    "202": _json(_ref("Login"), "waiting for the browser: open authorization_url"),
                    "200": _json(_ref("Login"), "the login already ended (failed, or none is needed)"),
                    "501": _json(_ref("Error"), "this daemon runs no logins"),
                    **_ERRORS,
                },
            },
            "get": {
                "summary": "The login the daemon runs (or last ran) for the workload",
                "parameters": _NAME,
                "responses": {"200": _json(_ref("Login"), "the login"), **_ERRORS},
            },
        },
        f"{API_PREFIX}/workloads/{{name}}/start": _action("Start (desired state: running)"),
        f"{API_PREFIX}/workloads/{{name}}/stop": _action("Stop (desired state: stopped)"),
        f"{API_PREFIX}/workloads/{{name}}/restart": _action("Restart"),
        f"{API_PREFIX}/workloads/{{name}}/reload-credentials": _action(
            "Re-read the stored login after `mcpkeeper login NAME` (unauthenticated -> running)"
        ),
        f"{API_PREFIX}/events": {
            "get": {
                "summary": "Server-sent events: a 'workloads' event (data: DashboardView) now and at every "
                "change; the stream ends after 30 minutes (reconnect)",
                "responses": {
                    "200": {
                        "description": "event stream",
                        "content": {"text/event-stream": {"schema": _STR}},
                    },
                    "503": _json(_ref("Error"), "too many streams open"),
                },
            }
        },
        f"{API_PREFIX}/dashboard/link": {
            "post": {
                "summary": "A one-time URL of the web dashboard (its code works once, for two minutes)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"url": _STR, "expires_in": {"type": "integer"}},
                            "required": ["url", "expires_in"],
                        },
                        "the link",
                    ),
                    "501": _json(_ref("Error"), "the daemon serves no HTTP API (serve --api)"),
                },
            }
        },
        f"{API_PREFIX}/shutdown": {
            "post": {"summary": "Stop the daemon", "responses": {"202": {"description": "shutting down"}}}
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (TCP listener only): statuses, token expiry, refresh "
                "attempts, time in auth_retrying, 503s, proxy latency, upstream errors, process",
                "responses": {"200": {"description": "Prometheus text or OpenMetrics", "content": _TEXT}},
            }
        },
    },
    "security": _BEARER,
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "On loopback TCP (serve --api): the token in <home>/secrets/api-token. "
                "The Unix socket needs none (it is 0600).",
            }
        },
        "schemas": {
            "Error": {"type": "object", "properties": {"error": _STR}, "required": ["error"]},
            "WorkloadStatus": {
                "type": "object",
                "properties": {
                    "status": {"enum": [s.value for s in WorkloadStatus]},
                    "status_context": _STR,
                    "health": {"enum": [h.value for h in Health]},
                    "updated_at": _OPT_TIME,
                },
                "required": ["status", "status_context", "health", "updated_at"],
            },
            "Login": {
                "type": "object",
                "properties": {
                    "name": _STR,
                    "state": {"enum": _LOGIN_STATES},
                    "authorization_url": {
                        "type": ["string", "null"],
                        "description": "open it in the user's browser (set while pending)",
                    },
                    "error": {"type": ["string", "null"]},
                    "started_at": {"type": "number"},
                    "expires_at": {"type": "number"},
                    "finished_at": _OPT_NUM,
                },
                "required": ["name", "state", "authorization_url", "error", "started_at", "expires_at"],
            },
            "Health": {
                "type": "object",
                "properties": {"status": _STR, "pid": {"type": "integer"}, "version": _STR},
            },
            "CreateWorkload": {
                "type": "object",
                "properties": {
                    "name": _STR,
                    "remote_url": _STR,
                    "url": {"type": "string", "description": "ToolHive's name for remote_url"},
                    "port": {"type": ["integer", "null"]},
                    "proxy_port": {"type": ["integer", "null"], "description": "ToolHive's name for port"},
                    "auth": {"type": "boolean", "default": True},
                    "login": {
                        "type": "boolean",
                        "default": False,
                        "description": "without a stored login, start a browser login in the daemon; "
                        "the answer carries it (login.authorization_url)",
                    },
                    "client_auth": {
                        "type": "boolean",
                        "default": False,
                        "description": "Clients must send 'Authorization: Bearer <client token>' "
                        "(<home>/secrets/client-token)",
                    },
                },
                "required": ["name"],
            },
            "WorkloadInfo": {
                "type": "object",
                "description": "ToolHive's core.Workload fields (same names and meanings), ours beside",
                "properties": {
                    "name": _STR,
                    "package": {"const": "remote", "description": "ToolHive: what it reports for a remote"},
                    "remote": {"const": True},
                    "status": {"enum": [s.value for s in WorkloadStatus]},
                    "status_context": _STR,
                    "url": {"type": ["string", "null"], "description": "the local URL clients use"},
                    "port": {"type": ["integer", "null"]},
                    "transport_type": {"enum": ["streamable-http", "sse", None]},
                    "proxy_mode": {"enum": ["streamable-http", "sse", None]},
                    "group": {"const": "default"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "tools": {"type": "array", "items": _STR, "description": "ToolHive's tool filter (none)"},
                    "created_at": _OPT_TIME,
                    "started_at": {
                        **_OPT_TIME,
                        "description": "when the proxy last started; null if not running",
                    },
                    "remote_url": {"type": ["string", "null"], "description": "ours: the remote MCP server"},
                    "transport": {"type": ["string", "null"], "description": "ours: = transport_type"},
                    "updated_at": _OPT_TIME,
                    "health": {"enum": [h.value for h in Health]},
                    "pid": {"type": ["integer", "null"]},
                    "client_auth": {
                        "type": "boolean",
                        "description": "Whether the local URL requires the client token",
                    },
                    "login": {**_ref("Login"), "description": "POST /workloads with login=true only"},
                },
                "required": [
                    "name",
                    "package",
                    "remote",
                    "status",
                    "status_context",
                    "url",
                    "port",
                    "transport_type",
                    "proxy_mode",
                    "group",
                    "labels",
                    "tools",
                    "created_at",
                    "started_at",
                    "health",
                ],
            },
            "WorkloadDetail": {
                "allOf": [
                    _ref("WorkloadInfo"),
                    {
                        "type": "object",
                        "properties": {
                            "desired_state": {"enum": ["running", "stopped"]},
                            "auth": {
                                "type": ["object", "null"],
                                "description": "the live token monitor's view (no secrets); when "
                                "not running, the stored login's facts; null without auth",
                                "properties": {
                                    "state": {"enum": ["fresh", "retrying", "dead", "stored", "no token"]},
                                    "reason": _STR,
                                    "access_expires_at": _OPT_TIME,
                                    "has_refresh_token": {"type": "boolean"},
                                    "last_refresh_at": _OPT_TIME,
                                    "last_attempt_at": _OPT_TIME,
                                    "next_attempt_at": _OPT_TIME,
                                    "retrying_since": _OPT_TIME,
                                    "consecutive_failures": {"type": "integer"},
                                    "last_failure": {"type": ["string", "null"]},
                                    "unsaved": {"type": ["string", "null"]},
                                },
                            },
                            "history": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "status": _STR,
                                        "reason": _STR,
                                        "previous_status": {"type": ["string", "null"]},
                                        "at": _TIME,
                                    },
                                },
                            },
                        },
                    },
                ]
            },
        },
    },
}
