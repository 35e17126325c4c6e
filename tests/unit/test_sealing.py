"""Encryption at rest of the shared store: a sealed value opens only with a configured key, for its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpkeeper.state.sealing import KeyRing, KeyRingError, SealedValueError, new_key


def test_a_sealed_value_opens_with_its_key_and_context_and_holds_no_plaintext() -> None:
    ring = KeyRing.from_env({"MCPKEEPER_STORE_KEY": new_key()})
    secret = b'{"refresh_token": "rt-very-secret"}'
    sealed = ring.seal(secret, "mcpkeeper:login:notes")
    assert b"rt-very-secret" not in sealed.encode() and "very-secret" not in sealed
    assert ring.open(sealed, "mcpkeeper:login:notes") == secret
    assert ring.seal(secret, "mcpkeeper:login:notes") != sealed  # a fresh nonce every time


def test_a_value_moved_to_another_key_name_or_tampered_with_does_not_open() -> None:
    ring = KeyRing.from_env({"MCPKEEPER_STORE_KEY": new_key()})
    sealed = ring.seal(b"token", "mcpkeeper:login:notes")
    with pytest.raises(SealedValueError, match="does not open"):
        ring.open(sealed, "mcpkeeper:login:other")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealedValueError):
        ring.open(flipped, "mcpkeeper:login:notes")
    with pytest.raises(SealedValueError, match="not a value sealed"):
        ring.open('{"plain": "json"}', "mcpkeeper:login:notes")


def test_rotation_new_key_first_old_ones_still_open_and_rekeying_is_detectable(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    before = KeyRing.from_env({"MCPKEEPER_STORE_KEY": old})
    sealed = before.seal(b"token", "k")
    key_file = tmp_path / "keys"
    key_file.write_text(f"# current first\n{new}\n{old}\n")
    after = KeyRing.from_env({"MCPKEEPER_STORE_KEY_FILE": str(key_file)})
    assert after.open(sealed, "k") == b"token"
    assert not after.sealed_with_current(sealed)
    resealed = after.seal(after.open(sealed, "k"), "k")
    assert after.sealed_with_current(resealed)
    only_new = KeyRing.from_env({"MCPKEEPER_STORE_KEY": new})
    with pytest.raises(SealedValueError, match="not among the configured keys"):
        only_new.open(sealed, "k")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "needs an encryption key"),
        ({"MCPKEEPER_STORE_KEY": "c2hvcnQ="}, "is 32 bytes"),
        ({"MCPKEEPER_STORE_KEY": "not base64 !!"}, "base64"),
        ({"MCPKEEPER_STORE_KEY_FILE": "/nonexistent/keys"}, "cannot read"),
    ],
)
def test_a_missing_or_malformed_key_is_a_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing.from_env(env)
