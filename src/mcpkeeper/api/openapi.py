"""A hand-written OpenAPI 3.1 description of the control API (served at ``/openapi.json``).

Hand-written because the API is small and its JSON shapes are plain dicts built in
:mod:`.views`; a generator would need models duplicating them. ``test_api_app`` checks
that every route of the app is described here, so the two cannot drift apart.
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
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_INFO_RESPONSE = {"200": _json(_ref("WorkloadInfo"), "the workload after the action"), **_ERRORS}


def _action(summary: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "parameters": _NAME, "responses": _INFO_RESPONSE}}


_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}

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
                "parameters": [{"name": "all", "in": "query", "schema": {"type": "boolean"}}],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"workloads": {"type": "array", "items": _ref("WorkloadInfo")}},
                        },
                        "workloads",
                    )
                },
            },
            "post": {
                "summary": "Create and start a workload (its login must be stored first unless auth=false)",
                "requestBody": {"content": {"application/json": {"schema": _ref("CreateWorkload")}}},
                "responses": {
                    "201": _json(_ref("WorkloadInfo"), "created"),
                    "409": _json(_ref("Error"), "name exists"),
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
        f"{API_PREFIX}/workloads/{{name}}/start": _action("Start (desired state: running)"),
        f"{API_PREFIX}/workloads/{{name}}/stop": _action("Stop (desired state: stopped)"),
        f"{API_PREFIX}/workloads/{{name}}/restart": _action("Restart"),
        f"{API_PREFIX}/workloads/{{name}}/reload-credentials": _action(
            "Re-read the stored login after `mcpkeeper login NAME` (unauthenticated -> running)"
        ),
        f"{API_PREFIX}/shutdown": {
            "post": {"summary": "Stop the daemon", "responses": {"202": {"description": "shutting down"}}}
        },
    },
    "components": {
        "schemas": {
            "Error": {"type": "object", "properties": {"error": _STR}, "required": ["error"]},
            "Health": {
                "type": "object",
                "properties": {"status": _STR, "pid": {"type": "integer"}, "version": _STR},
            },
            "CreateWorkload": {
                "type": "object",
                "properties": {
                    "name": _STR,
                    "remote_url": _STR,
                    "port": {"type": ["integer", "null"]},
                    "auth": {"type": "boolean", "default": True},
                    "client_auth": {
                        "type": "boolean",
                        "default": False,
                        "description": "Clients must send 'Authorization: Bearer <client token>' "
                        "(<home>/secrets/client-token)",
                    },
                },
                "required": ["name", "remote_url"],
            },
            "WorkloadInfo": {
                "type": "object",
                "properties": {
                    "name": _STR,
                    "status": {"enum": [s.value for s in WorkloadStatus]},
                    "status_context": _STR,
                    "remote_url": _STR,
                    "url": {"type": ["string", "null"]},
                    "port": {"type": ["integer", "null"]},
                    "transport": _STR,
                    "created_at": _TIME,
                    "updated_at": _TIME,
                    "health": {"enum": [h.value for h in Health]},
                    "pid": {"type": ["integer", "null"]},
                    "client_auth": {
                        "type": "boolean",
                        "description": "Whether the local URL requires the client token",
                    },
                },
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
        }
    },
}
