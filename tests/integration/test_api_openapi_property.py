"""The published OpenAPI description against the real API: random requests (hypothesis) to a
real daemon over its TCP listener, and every answer must be one the description lists for
that operation, with a body its schema accepts.

Bounded: a fixed number of examples, each one request. The streaming endpoints (``/events``,
``/logs?follow``) and ``/shutdown`` are left to their own tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests.integration.http_api_support import api_daemon, api_url

pytestmark = pytest.mark.integration

API = "/api/v1beta"
_NAMES = st.sampled_from(["alpha", "beta", "ghost", "bad!name", "UPPER", "a" * 80])
_URLS = st.sampled_from(["http://127.0.0.1:9/mcp", "https://mcp.example.com/mcp", "ftp://x", "not a url", ""])
_JSONISH = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12))


def _body() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": st.one_of(_NAMES, st.just("../etc"))},
        optional={
            "remote_url": _URLS,
            "url": _URLS,
            "port": _JSONISH,
            "proxy_port": _JSONISH,
            "auth": st.sampled_from([False, False, True, None, "yes"]),
            "login": st.sampled_from([False, None, 1]),
            "client_auth": _JSONISH,
        },
    )


_OPERATIONS = st.one_of(
    st.tuples(
        st.just("get"),
        st.just("/workloads"),
        st.fixed_dictionaries(
            {},
            optional={
                "all": st.sampled_from(["true", "false"]),
                "group": st.sampled_from(["default", "other"]),
            },
        ),
        st.none(),
    ),
    st.tuples(st.just("post"), st.just("/workloads"), st.just({}), _body()),
    st.tuples(st.just("get"), _NAMES.map(lambda n: f"/workloads/{n}"), st.just({}), st.none()),
    st.tuples(st.just("delete"), _NAMES.map(lambda n: f"/workloads/{n}"), st.just({}), st.none()),
    st.tuples(st.just("get"), _NAMES.map(lambda n: f"/workloads/{n}/status"), st.just({}), st.none()),
    st.tuples(
        st.just("get"),
        _NAMES.map(lambda n: f"/workloads/{n}/logs"),
        st.fixed_dictionaries({}, optional={"tail": st.sampled_from(["0", "5", "-1", "x", "100001"])}),
        st.none(),
    ),
    st.tuples(st.just("get"), _NAMES.map(lambda n: f"/workloads/{n}/login"), st.just({}), st.none()),
    st.tuples(
        st.just("post"),
        st.tuples(_NAMES, st.sampled_from(["start", "stop", "restart", "reload-credentials"])).map(
            lambda t: f"/workloads/{t[0]}/{t[1]}"
        ),
        st.just({}),
        st.none(),
    ),
    st.tuples(st.just("get"), st.just("/health"), st.just({}), st.none()),
)


def _template(path: str) -> str:
    """The OpenAPI path of a concrete API path (the workload name becomes ``{name}``)."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "workloads":
        parts[2] = "{name}"
    return API + "/".join(parts)


def _check(openapi: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    operation = openapi["paths"][_template(path)][method]
    documented = operation["responses"]
    status = str(response.status_code)
    assert status in documented, (
        f"{method.upper()} {path} answered {status}, not described: {response.text[:200]}"
    )
    content = documented[status].get("content")
    if content is None:
        assert not response.content, f"{method.upper()} {path} {status} has a body the description lacks"
        return
    media = response.headers["content-type"].split(";")[0]
    assert media in content, f"{method.upper()} {path} {status} is {media}, described: {list(content)}"
    if media == "application/json":
        schema = {**content[media]["schema"], "components": openapi["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(response.json()), key=str)
        assert not errors, f"{method.upper()} {path} {status}: {errors[0].message} in {response.text[:300]}"


async def test_every_answer_matches_the_published_description(tmp_path: Path) -> None:
    async with api_daemon(tmp_path) as (_, http):
        openapi = (await http.get("/openapi.json")).json()
        Draft202012Validator.check_schema({"components": openapi["components"]})
        base, headers = api_url(tmp_path), dict(http.headers)
        seen: set[tuple[str, str, int]] = set()

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(_OPERATIONS)
        # Explicit examples run first, whatever the draw: a creation that succeeds, then reads of it.
        @example(
            (
                "post",
                "/workloads",
                {},
                {"name": "alpha", "remote_url": "http://127.0.0.1:9/mcp", "auth": False},
            )
        )
        @example(("get", "/workloads/alpha", {}, None))
        def probe(operation: tuple[str, str, dict[str, str], dict[str, Any] | None]) -> None:
            method, path, params, body = operation
            with httpx.Client(base_url=base, headers=headers, timeout=20.0) as client:
                response = client.request(method, API + path, params=params, json=body)
            _check(openapi, method, path, response)
            seen.add((method, _template(path), response.status_code))

        await asyncio.to_thread(probe)
        # The run reached both sides of the contract, not only refusals.
        assert {s for _, _, s in seen} >= {200, 201, 400, 404}, seen
