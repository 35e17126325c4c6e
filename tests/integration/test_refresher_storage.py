"""A disk that fails during a rotation (the real refresher, the real fixture AS with strict
rotation, a file store whose writes fail on demand at the call site a full disk fails).

The rotated refresh token must never be lost nor the spent one sent again: the new token
set is used from memory, the next refresh spends *it*, and it reaches the disk as soon as
the disk takes it. The status store keeps its last report and writes it once it can.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
from mcpkeeper.auth.errors import FailureKind, StorageError, TokenNotSavedError, classify
from mcpkeeper.auth.registration import ClientRegistration
from mcpkeeper.auth.token import Token
from mcpkeeper.state.secrets import FileSecretBackend, SecretStore
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing import FixtureAuthServer

from ..waiting import eventually

pytestmark = pytest.mark.integration


class FlakyDisk(FileSecretBackend):
    """The file backend, whose writes fail with ENOSPC while ``full``."""

    full = False

    def write(self, name: str, text: str) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(name, text)


def _store(tmp_path: Path) -> tuple[CredentialStore, FlakyDisk]:
    disk = FlakyDisk(tmp_path / "secrets")
    return CredentialStore(SecretStore(tmp_path, backend=disk)), disk


def _logged_in(tmp_path: Path, auth: FixtureAuthServer) -> tuple[CredentialStore, FlakyDisk, Token]:
    """A store on a (not yet full) flaky disk holding a fresh login ``w`` of ``auth``, and its token."""
    store, disk = _store(tmp_path)
    token = store.save("w", _login(auth)).token
    assert token is not None
    return store, disk, token


def _login(auth: FixtureAuthServer) -> StoredLogin:
    minted = auth.mint("cli")
    now = time.time()
    token = Token(minted["access_token"], minted["refresh_token"], expires_at=now + 60, issued_at=now)
    return StoredLogin(
        remote_url="http://127.0.0.1:1/mcp",
        issuer=auth.issuer,
        authorization_endpoint=auth.authorization_endpoint,
        token_endpoint=auth.token_endpoint,
        client=ClientRegistration("cli"),
        token=token,
    )


async def test_a_rotation_the_disk_refuses_is_kept_used_and_saved_later(tmp_path: Path) -> None:
    async with FixtureAuthServer() as auth:  # strict rotation: a spent token is invalid_grant
        store, disk, first = _logged_in(tmp_path, auth)
        refresher = store.refresher("w")

        disk.full = True
        with pytest.raises(TokenNotSavedError) as info:
            await refresher(first)
        second = info.value.token
        assert second.refresh_token != first.refresh_token
        assert "No space left" in str(info.value)
        on_disk = store.load("w")
        assert on_disk is not None and on_disk.token == first  # the disk is behind

        # Still full: the next refresh spends the token from memory, never the spent one.
        with pytest.raises(TokenNotSavedError) as info:
            await refresher(second)
        third = info.value.token
        assert auth.counters.spent_token_reuse == 0

        # A retry of the save while full fails; once space is back, it lands.
        with pytest.raises(OSError):
            await info.value.retry_save()
        disk.full = False
        await info.value.retry_save()
        on_disk = store.load("w")
        assert on_disk is not None and on_disk.token == third
        assert (await refresher(third)).refresh_token != third.refresh_token  # the server accepts it
        assert auth.counters.spent_token_reuse == 0


async def test_a_new_login_stored_meanwhile_wins_over_the_unsaved_token(tmp_path: Path) -> None:
    async with FixtureAuthServer() as auth:
        store, disk, first = _logged_in(tmp_path, auth)
        refresher = store.refresher("w")
        disk.full = True
        with pytest.raises(TokenNotSavedError) as info:
            await refresher(first)
        disk.full = False
        relogin = store.save("w", _login(auth))  # `mcpkeeper login w` in another process
        await info.value.retry_save()  # finds the newer login and leaves it alone
        on_disk = store.load("w")
        assert on_disk is not None and on_disk.token == relogin.token


async def test_a_lock_that_cannot_be_taken_is_a_storage_failure_not_a_network_one(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    (tmp_path / "locks").write_text("not a directory")  # the lock file cannot be created
    with pytest.raises(StorageError) as info:
        await store.refresher("w")(Token("at", "rt-0123456789"))
    failure = classify(info.value)
    assert failure.kind is FailureKind.STORAGE and failure.transient and not failure.network
    assert "local storage error" in failure.reason


async def test_a_status_write_that_fails_is_retried_until_the_file_is_true(tmp_path: Path) -> None:
    store = StatusStore(tmp_path)
    sink = store.sink("w")
    sink.report(WorkloadStatus.RUNNING, "token loaded")
    # A file where the statuses directory was: the next write fails (for root too).
    (tmp_path / "statuses").rename(tmp_path / "statuses.away")
    (tmp_path / "statuses").write_text("in the way")
    sink.report(WorkloadStatus.UNAUTHENTICATED, "invalid_grant; run `mcpkeeper login w`")
    assert sink.behind
    (tmp_path / "statuses").unlink()
    (tmp_path / "statuses.away").rename(tmp_path / "statuses")
    await eventually(lambda: not sink.behind, timeout=5)
    record = store.get("w")
    assert record is not None and record.status is WorkloadStatus.UNAUTHENTICATED
