"""SecretStore: the 0600 file backend, keyring detection and backend, corruption handling."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.errors
import pytest
from keyring.backends import chainer, fail, null

from mcpkeeper.state.secrets import (
    BACKEND_ENV,
    CorruptSecretError,
    FileSecretBackend,
    KeyringSecretBackend,
    SecretStore,
    detect_backend,
    keyring_is_usable,
)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An OS keyring stand-in: the same API a real keyring backend implements."""

    priority = 5  # type: ignore[assignment]
    # Defining a backend class registers it with keyring's discovery: without this, the
    # first keyring.get_keyring() after this module is imported picks it as the process's
    # keyring, and later in-process logins of other tests vanish into memory.
    viable = False

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


@pytest.fixture
def files(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path, backend=FileSecretBackend(tmp_path / "secrets"))


@pytest.fixture
def global_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    try:
        yield memory
    finally:
        keyring.set_keyring(previous)


def test_file_round_trip_with_private_modes(files: SecretStore, tmp_path: Path) -> None:
    data: dict[str, Any] = {"token": {"access_token": "a", "refresh_token": "r"}, "n": 1}
    files.save("notes", data)
    assert files.load("notes") == data
    path = tmp_path / "secrets" / "notes.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    files.save("notes", {"n": 2})
    assert files.load("notes") == {"n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["notes.json"]  # no temp files left


def test_missing_secret_is_none_and_delete_reports(files: SecretStore) -> None:
    assert files.load("absent") is None
    assert files.delete("absent") is False
    files.save("x", {})
    assert files.delete("x") is True
    assert files.load("x") is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b" " * ((1 << 20) + 10), "larger than"),
    ],
)
def test_corrupt_file_is_moved_aside_with_a_clear_error(
    files: SecretStore, tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "secrets" / "notes.json"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(content)
    with pytest.raises(CorruptSecretError, match=reason) as caught:
        files.load("notes")
    message = str(caught.value)
    assert "\n" not in message and "notes" in message and "moved aside" in message
    moved = Path(caught.value.moved_to or "")
    assert moved.read_bytes() == content  # nothing lost
    assert not path.exists()
    assert files.load("notes") is None  # the next login starts clean
    files.save("notes", {"ok": True})
    assert moved.read_bytes() == content


def test_invalid_names_never_reach_the_disk(files: SecretStore) -> None:
    for bad in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(ValueError):
            files.save(bad, {})


def test_keyring_usability() -> None:
    assert not keyring_is_usable(fail.Keyring())
    assert not keyring_is_usable(null.Keyring())
    assert keyring_is_usable(MemoryKeyring())

    class EmptyChain(chainer.ChainerBackend):
        backends: list[Any] = []  # noqa: RUF012 - overrides keyring's discovery

    class MemoryChain(chainer.ChainerBackend):
        backends: list[Any] = [MemoryKeyring()]  # noqa: RUF012

    assert not keyring_is_usable(EmptyChain())
    assert keyring_is_usable(MemoryChain())


def test_headless_machine_gets_the_file_backend(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert isinstance(detect_backend(tmp_path, {}), FileSecretBackend)
    finally:
        keyring.set_keyring(previous)


def test_a_usable_keyring_is_preferred_unless_files_are_forced(
    tmp_path: Path, global_keyring: MemoryKeyring
) -> None:
    assert isinstance(detect_backend(tmp_path, {}), KeyringSecretBackend)
    assert isinstance(detect_backend(tmp_path, {BACKEND_ENV: "file"}), FileSecretBackend)


def test_keyring_backend_round_trip_and_isolation_by_home(tmp_path: Path) -> None:
    memory = MemoryKeyring()
    one = SecretStore(tmp_path / "one", backend=KeyringSecretBackend(tmp_path / "one", memory))
    two = SecretStore(tmp_path / "two", backend=KeyringSecretBackend(tmp_path / "two", memory))
    one.save("notes", {"v": 1})
    two.save("notes", {"v": 2})
    assert one.load("notes") == {"v": 1}
    assert two.load("notes") == {"v": 2}
    assert not (tmp_path / "one" / "secrets").exists()  # nothing on disk
    assert one.delete("notes") and not one.delete("notes")
    assert two.load("notes") == {"v": 2}


def test_corrupt_keyring_entry_is_kept_under_another_name(tmp_path: Path) -> None:
    memory = MemoryKeyring()
    backend = KeyringSecretBackend(tmp_path, memory)
    store = SecretStore(tmp_path, backend=backend)
    memory.set_password(backend.service, "notes", "{broken")
    with pytest.raises(CorruptSecretError, match="not valid JSON"):
        store.load("notes")
    assert memory.get_password(backend.service, "notes.corrupted") == "{broken"
    assert store.load("notes") is None


def test_store_serialises_as_json(files: SecretStore, tmp_path: Path) -> None:
    files.save("n", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "secrets" / "n.json").read_text()) == {"a": [1, 2], "b": 1}


def test_lock_path_is_under_locks(files: SecretStore, tmp_path: Path) -> None:
    lock = files.lock("notes")
    assert lock.path == tmp_path / "locks" / "notes.lock"
