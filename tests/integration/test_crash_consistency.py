"""Refresh-token rotation survives SIGKILL, and two processes never spend one refresh token twice.

Real processes, real files, the real fixture authorization server over HTTP: a worker
process refreshes through :class:`PersistingRefresher` in a loop and is killed at random
moments; afterwards the refresh token in the store must still be accepted — no login.

About the kill window. Between the authorization server rotating a refresh token and the
client's fsync of the new one, no client can protect itself: if it dies there, the new
token is lost and the old one is spent. Real servers close that window with a reuse grace
(Okta's grace period, Auth0's reuse interval, Keycloak/Ory equivalents): the previous
refresh token stays usable until its successor is first used. The fixture server's
``refresh_reuse_grace`` is exactly that rule, and nothing more: a token two generations
old is still rejected, so a client that saves late or not at all, or writes a torn file,
fails this test. The concurrency test uses the strict server.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.auth.token import Token
from mcpkeeper.state.secrets import FileSecretBackend, SecretStore
from mcpkeeper.testing import FixtureAuthServer

pytestmark = pytest.mark.integration

NAME = "crashy"
KILLS = 10
REFRESHES_PER_WORKER = 50
CONCURRENT_REFRESHES = 25
_WAIT = 30.0

_WORKER = """\
    import asyncio, json, sys
    from pathlib import Path

    import httpx

    from mcpkeeper.auth.credentials import CredentialStore
    from mcpkeeper.state.secrets import FileSecretBackend, SecretStore


    async def main(home: Path, name: str, count: int, introspect: str) -> None:
        store = CredentialStore(SecretStore(home, backend=FileSecretBackend(home / "secrets")))
        refresher = store.refresher(name, timeout=10.0)
        token = store.load(name).token
        for done in range(1, count + 1):
            token = await refresher(token)
            print(done, flush=True)
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.post(introspect, data={"token": token.access_token})
        print(json.dumps({"final_active": answer.json().get("active") is True}), flush=True)


    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]))
"""


@pytest.fixture
async def auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer(access_token_lifetime=5.0) as server:
        yield server


@pytest.fixture
async def graceful_auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer(access_token_lifetime=5.0, refresh_reuse_grace=True) as server:
        yield server


def _store(home: Path) -> CredentialStore:
    return CredentialStore(SecretStore(home, backend=FileSecretBackend(home / "secrets")))


def _seed(auth: FixtureAuthServer, store: CredentialStore) -> None:
    """A stored login as ``mcpkeeper login`` leaves it, with tokens minted by the fixture."""
    minted = auth.mint("crash-client", scope="mcp offline_access")
    now = time.time()
    token = Token(
        minted["access_token"],
        minted["refresh_token"],
        expires_at=now + float(minted["expires_in"]),
        scope=minted["scope"],
        issued_at=now,
    )
    store.save(
        NAME,
        StoredLogin(
            remote_url="http://127.0.0.1:9/mcp",
            issuer=auth.issuer,
            authorization_endpoint=auth.authorization_endpoint,
            token_endpoint=auth.token_endpoint,
            client=ClientRegistration("crash-client"),
            scopes=("mcp", "offline_access"),
            token=token,
        ),
    )


async def _start_worker(
    script: Path, home: Path, auth: FixtureAuthServer, count: int = REFRESHES_PER_WORKER
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(home),
        NAME,
        str(count),
        f"{auth.url}/introspect",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def _write_worker(tmp_path: Path) -> Path:
    script = tmp_path / "refresh_worker.py"
    script.write_text(textwrap.dedent(_WORKER))
    return script


async def test_sigkill_at_random_moments_never_loses_the_grant(
    graceful_auth: FixtureAuthServer, tmp_path: Path
) -> None:
    auth = graceful_auth
    home = tmp_path / "home"
    store = _store(home)
    _seed(auth, store)
    script = _write_worker(tmp_path)
    rng = random.Random()
    refreshes_before_kills: list[int] = []
    for _ in range(KILLS):
        grace_before = auth.counters.grace_reuse
        worker = await _start_worker(script, home, auth)
        assert worker.stdout is not None
        lines_before_kill = rng.randint(1, 4)
        async with asyncio.timeout(_WAIT):
            for _ in range(lines_before_kill):
                assert (await worker.stdout.readline()).strip(), "the worker died on its own"
            await asyncio.sleep(rng.uniform(0.0, 0.1))  # a random moment in the next refreshes (~40 ms each)
        assert worker.returncode is None, "the worker finished before it could be killed"
        worker.kill()  # SIGKILL: no cleanup, no flush, no finally
        async with asyncio.timeout(_WAIT):
            await worker.wait()
        refreshes_before_kills.append(lines_before_kill)
        # Only the refresh after a crash may need the grace: a client that needed it while
        # running lost a token it had already used (saved late, or not at all).
        assert auth.counters.grace_reuse == grace_before, "the running worker needed the reuse grace"

        login = store.load(NAME)  # never torn: the file is whole and parses
        assert login is not None and login.token is not None
        # The stored refresh token is accepted: this refresh must succeed, with no login.
        fresh = await store.refresher(NAME, timeout=10.0)(login.token)
        assert auth.verify_access_token(fresh.access_token) is not None
        saved = store.load(NAME)
        assert saved is not None and saved.token == fresh

    assert auth.counters.spent_token_reuse == 0
    assert auth.counters.by_outcome["ok"] >= sum(refreshes_before_kills) + KILLS
    # For the record (random): how many kills fell between the server's rotation and our fsync.
    grace_reuses = auth.counters.grace_reuse
    print(f"kills inside the unavoidable window (saved by the grace rule): {grace_reuses}/{KILLS}")


async def test_two_processes_never_spend_one_refresh_token_twice(
    auth: FixtureAuthServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    store = _store(home)
    _seed(auth, store)
    script = _write_worker(tmp_path)
    workers = [await _start_worker(script, home, auth, CONCURRENT_REFRESHES) for _ in range(2)]
    outputs: list[tuple[bytes, bytes]] = []
    async with asyncio.timeout(_WAIT * 2):
        for worker in workers:
            outputs.append(await worker.communicate())
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
        lines = out.decode().splitlines()
        assert lines[CONCURRENT_REFRESHES - 1] == str(CONCURRENT_REFRESHES)  # every refresh returned a token
        assert json.loads(lines[-1]) == {"final_active": True}  # and each ends with a valid one

    counters = auth.counters
    assert counters.spent_token_reuse == 0
    refreshes = counters.by_grant["refresh_token"]
    assert counters.by_outcome["ok"] == refreshes  # no refresh was refused
    # Each process asked 25 times; a request was sent only when the store had not moved on.
    assert CONCURRENT_REFRESHES <= refreshes <= 2 * CONCURRENT_REFRESHES
    login = store.load(NAME)
    assert login is not None and login.token is not None
    fresh = await store.refresher(NAME, timeout=10.0)(login.token)
    assert auth.verify_access_token(fresh.access_token) is not None
