"""StoredLogin and CredentialStore, and the PersistingRefresher decisions that need no network."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError, StoredLogin
from mcpkeeper.auth.errors import TokenEndpointError, classify
from mcpkeeper.auth.protocols import ReachabilityProbe
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.auth.token import Token
from mcpkeeper.state.secrets import FileSecretBackend, SecretStore

# Nothing listens on port 1: a refresher that tried the network here would fail loudly.
DEAD_TOKEN_ENDPOINT = "http://127.0.0.1:1/token"


def _login(token: Token | None = None) -> StoredLogin:
    return StoredLogin(
        remote_url="https://mcp.example.com/mcp",
        issuer="https://auth.example.com",
        authorization_endpoint="https://auth.example.com/authorize",
        token_endpoint=DEAD_TOKEN_ENDPOINT,
        client=ClientRegistration(
            "cid", "client-secret-value", "client_secret_basic", None, ("http://127.0.0.1:5/callback",)
        ),
        resource="https://mcp.example.com/mcp",
        scopes=("mcp", "offline_access"),
        token=token,
    )


def _token(access: str = "access-1", refresh: str | None = "refresh-1", life: float = 3600.0) -> Token:
    now = time.time()
    return Token(access, refresh, expires_at=now + life, scope="mcp", issued_at=now)


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(SecretStore(tmp_path, backend=FileSecretBackend(tmp_path / "secrets")))


def test_stored_login_round_trip(store: CredentialStore) -> None:
    login = _login(_token())
    saved = store.save("notes", login)
    assert saved.saved_at is not None
    loaded = store.load("notes")
    assert loaded == login
    assert loaded is not None and loaded.token == login.token


def test_repr_never_shows_secrets() -> None:
    text = repr(_login(_token("access-secret-xyz", "refresh-secret-xyz")))
    assert "access-secret-xyz" not in text
    assert "refresh-secret-xyz" not in text
    assert "client-secret-value" not in text


def test_a_registration_without_token_round_trips(store: CredentialStore) -> None:
    store.save("notes", _login(None))
    loaded = store.load("notes")
    assert loaded is not None and loaded.token is None


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ({"token_endpoint": None}, "missing token_endpoint"),
        ({"client": "nope"}, "missing client"),
        ({"client": {}}, "no client_id"),
        ({"token": ["x"]}, "token is not an object"),
        ({"token": {"refresh_token": "r"}}, "no access_token"),
    ],
)
def test_a_stored_value_that_is_not_a_login_is_moved_aside(
    store: CredentialStore, tmp_path: Path, damage: dict[str, object], why: str
) -> None:
    data = _login(_token()).to_dict()
    data.update(damage)
    store.secrets.save("notes", data)
    with pytest.raises(CredentialStoreError, match=why) as caught:
        store.load("notes")
    message = str(caught.value)
    assert "mcpkeeper login notes" in message and "\n" not in message
    assert (tmp_path / "secrets" / "notes.json.corrupted").exists()
    assert store.load("notes") is None


def test_corrupt_json_is_a_credential_store_error(store: CredentialStore, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir(mode=0o700)
    (tmp_path / "secrets" / "notes.json").write_text("{")
    with pytest.raises(CredentialStoreError, match="not valid JSON"):
        store.load("notes")


def test_monitor_inputs_probe_the_token_endpoint(store: CredentialStore) -> None:
    probed: list[str] = []

    def probe_factory(url: str, **_: object) -> ReachabilityProbe:
        probed.append(url)

        async def probe() -> str:
            return "http 405 text/plain"

        return probe

    assert store.monitor_inputs("notes", probe_factory=probe_factory) is None
    token = _token()
    store.save("notes", _login(token))
    inputs = store.monitor_inputs("notes", probe_factory=probe_factory)
    assert inputs is not None
    assert inputs.token == token
    assert probed == [DEAD_TOKEN_ENDPOINT]
    assert inputs.refresher.name == "notes"


async def test_refresher_uses_a_token_rotated_by_another_process(store: CredentialStore) -> None:
    ours = _token("access-1", "refresh-1")
    theirs = _token("access-2", "refresh-2")
    store.save("notes", _login(theirs))
    result = await store.refresher("notes")(ours)
    assert result == theirs  # no request: the dead endpoint was never contacted


async def test_refresher_adopts_a_fresher_access_token_from_a_non_rotating_server(
    store: CredentialStore,
) -> None:
    ours = _token("access-1", "same-refresh", life=5)
    theirs = _token("access-2", "same-refresh", life=3600)
    store.save("notes", _login(theirs))
    assert await store.refresher("notes")(ours) == theirs


async def test_refresher_spends_the_token_when_nobody_else_did(store: CredentialStore) -> None:
    ours = _token()
    store.save("notes", _login(ours))
    with pytest.raises(Exception) as caught:
        await store.refresher("notes", timeout=2.0)(ours)
    assert classify(caught.value).network  # it really tried the (dead) token endpoint
    assert store.load("notes") == _login(ours)  # and stored nothing new


async def test_refresher_without_stored_login_is_a_permanent_verdict(store: CredentialStore) -> None:
    with pytest.raises(TokenEndpointError) as caught:
        await store.refresher("notes")(_token())
    assert classify(caught.value).permanent


async def test_refresher_releases_the_lock(store: CredentialStore) -> None:
    ours = _token()
    store.save("notes", _login(replace(ours, refresh_token="other")))
    await store.refresher("notes")(ours)
    lock = store.secrets.lock("notes", timeout=0)
    await lock.acquire_async()
    lock.release()
