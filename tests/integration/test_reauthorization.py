"""Authorization the upstream asks for during the session, through a real workload runtime.

The upstream is the fixture MCP server gated per request: ``initialize`` passes without a
token, the rest wants one (401), and ``add`` wants an extra scope (403 insufficient_scope).
The client is the official SDK client through the runtime's proxy. In the foreground the
runtime has a login to run (a browser that approves at once); in the daemon it has none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from mcpkeeper.auth.credentials import CredentialStore
from mcpkeeper.auth.www_authenticate import BearerChallenge, parse_www_authenticate
from mcpkeeper.cli.login_cmd import resolve_target
from mcpkeeper.net import free_port
from mcpkeeper.proxy import create_proxy_app
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer, serve_asgi
from mcpkeeper.workloads.runtime import WorkloadRuntime
from tests.integration.daemon_support import store_login
from tests.integration.login_site import browser_login
from tests.integration.proxy_support import FakeProvider, text_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FixtureAuthServer, FixtureMCPServer]]:
    async with (
        FixtureAuthServer(scopes=("mcp", "write", "offline_access")) as auth,
        FixtureMCPServer(auth, open_handshake=True, tool_scopes={"add": ("mcp", "write")}) as mcp,
    ):
        yield auth, mcp


class LoginNow:
    """The foreground's login, recorded: what the runtime asked for, each time."""

    def __init__(self, url: str, name: str, store: CredentialStore) -> None:
        self.url, self.name, self.store = url, name, store
        self.calls: list[tuple[BearerChallenge | None, Sequence[str] | None]] = []

    async def __call__(self, challenge: BearerChallenge | None, scopes: Sequence[str] | None) -> None:
        self.calls.append((challenge, scopes))
        await browser_login(self.url, self.name, store=self.store, challenge=challenge, scopes=scopes)


async def test_the_foreground_logs_in_when_asked_and_steps_up_for_more_scopes(
    servers: tuple[FixtureAuthServer, FixtureMCPServer], tmp_path: Path
) -> None:
    auth, mcp = servers
    store = CredentialStore.open(tmp_path)
    login = LoginNow(mcp.url, "later", store)
    config = WorkloadConfig(name="later", remote_url=mcp.url, port=free_port(), auth=False)
    async with (
        WorkloadRuntime(config, home=tmp_path, login=login) as runtime,
        Client(runtime.url, mode="legacy") as client,  # initialize needs no token
    ):
        assert login.calls == []
        listed = await client.list_tools()  # 401 -> login -> replayed
        assert {tool.name for tool in listed.tools} >= {"echo", "add"}
        assert text_of(await client.call_tool("echo", {"text": "one login"})) == "one login"
        assert len(login.calls) == 1
        assert text_of(await client.call_tool("add", {"a": 40, "b": 2})) == "42"  # 403 -> step-up
        assert text_of(await client.call_tool("add", {"a": 1, "b": 1})) == "2"  # no third login
    first, second = login.calls
    assert first[1] is None and first[0] is not None and first[0].scope == "mcp"
    assert second[0] is not None and second[0].error == "insufficient_scope"
    assert second[1] is not None and set(second[1]) == {"mcp", "write", "offline_access"}
    stored = store.load("later")
    assert stored is not None and set(stored.granted_scopes) >= {"mcp", "write"}
    # The SDK's GET stream met the 401 too, at the same time: it waited for the one login.
    assert mcp.statuses[401] >= 1 and mcp.statuses[403] == 1
    assert auth.counters.by_grant["authorization_code"] == 2


async def test_a_scope_the_server_never_grants_is_not_asked_for_in_a_loop(tmp_path: Path) -> None:
    async with (
        FixtureAuthServer(scopes=("mcp", "admin", "offline_access")) as auth,
        FixtureMCPServer(auth, open_handshake=True, tool_scopes={"add": ("mcp", "admin")}) as mcp,
    ):
        auth.store.withheld_scopes = {"admin"}  # asked for, never granted
        store = CredentialStore.open(tmp_path)
        login = LoginNow(mcp.url, "stubborn", store)
        config = WorkloadConfig(name="stubborn", remote_url=mcp.url, port=free_port(), auth=False)
        async with (
            WorkloadRuntime(config, home=tmp_path, login=login) as runtime,
            Client(runtime.url, mode="legacy") as client,
        ):
            assert text_of(await client.call_tool("echo", {"text": "ok"})) == "ok"
            for _ in range(4):  # a client that keeps trying
                with pytest.raises(MCPError) as refused:
                    await client.call_tool("add", {"a": 1, "b": 2})
                assert refused.value.error.data["status"] == "insufficient_scope"
    step_ups = [scopes for _, scopes in login.calls if scopes]
    assert len(step_ups) == 2  # MAX_TRIES_PER_CHALLENGE, then refused without a login
    assert all("admin" in scopes for scopes in step_ups)
    assert len(login.calls) == 3 and mcp.statuses[403] == 4 + 2


async def test_the_daemon_refuses_says_login_and_login_name_does_the_right_login(
    servers: tuple[FixtureAuthServer, FixtureMCPServer], tmp_path: Path
) -> None:
    _, mcp = servers
    name = "daemonish"
    config = WorkloadConfig(name=name, remote_url=mcp.url, port=free_port(), auth=False)
    configs = WorkloadStore(tmp_path)
    configs.put(config)
    store = CredentialStore.open(tmp_path)
    async with WorkloadRuntime(config, home=tmp_path) as runtime:  # no login: the daemon
        async with Client(runtime.url, mode="legacy") as client:
            with pytest.raises(MCPError) as refused:
                await client.list_tools()
        assert f"run `mcpkeeper login {name}`" in refused.value.error.message
        record = StatusStore(tmp_path).get(name)
        assert record is not None and record.status == "unauthenticated"
        assert f"mcpkeeper login {name}" in record.status_context
        remembered = configs.get(name)
        assert remembered is not None and remembered.auth_challenge is not None

        # What `mcpkeeper login NAME` does: start from the remembered challenge.
        target = resolve_target(name, None, store, configs)
        assert target.challenge == remembered.auth_challenge
        challenge = parse_www_authenticate(target.challenge)
        assert challenge.resource_metadata == mcp.resource_metadata_url
        await browser_login(target.remote_url, name, store=store, challenge=challenge)
        assert runtime.reload_credentials()
        async with Client(runtime.url, mode="legacy") as client:
            assert text_of(await client.call_tool("echo", {"text": "back"})) == "back"
        record = StatusStore(tmp_path).get(name)
        assert record is not None and record.status == "running"


async def test_the_daemon_refuses_a_step_up_and_remembers_the_scopes_for_login(
    servers: tuple[FixtureAuthServer, FixtureMCPServer], tmp_path: Path
) -> None:
    auth, mcp = servers
    name = "narrow"
    store_login(tmp_path, name, auth, mcp)  # holds "mcp" only
    config = WorkloadConfig(
        name=name, remote_url=mcp.url, port=free_port(), issuer=auth.issuer, scopes=["mcp"]
    )
    configs = WorkloadStore(tmp_path)
    configs.put(config)
    async with WorkloadRuntime(config, home=tmp_path) as runtime:
        async with Client(runtime.url, mode="legacy") as client:
            assert text_of(await client.call_tool("echo", {"text": "fine"})) == "fine"
            with pytest.raises(MCPError) as refused:
                await client.call_tool("add", {"a": 1, "b": 2})
        assert f"mcpkeeper login {name}" in refused.value.error.message
        assert refused.value.error.data["status"] == "insufficient_scope"
        record = StatusStore(tmp_path).get(name)
        assert record is not None and record.status == "running"  # other calls still work
        assert "write" in record.status_context
    remembered = configs.get(name)
    assert remembered is not None and set(remembered.scopes) == {"mcp", "write"}
    assert resolve_target(name, None, CredentialStore.open(tmp_path), configs).scopes == ("mcp", "write")


async def test_requests_of_the_stateless_protocol_pass_unchanged() -> None:
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth, stateless=True) as mcp:
        provider = FakeProvider(auth.mint("stateless")["access_token"])
        async with (
            serve_asgi(create_proxy_app(mcp.url, provider, name="modern")) as proxy,
            Client(proxy.url + "/mcp", mode="2026-07-28") as client,
        ):
            assert text_of(await client.call_tool("echo", {"text": "no session"})) == "no session"
            listed = await client.list_tools()
        assert {tool.name for tool in listed.tools} >= {"echo", "add"}
        assert mcp.saw_token(provider.tokens[0])
