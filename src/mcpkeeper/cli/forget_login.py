"""Ending a stored login: revoke it at the authorization server (RFC 7009), then delete it here.

``logout`` and ``rm`` both come here. The workload's refresh lock is held meanwhile, so
no refresher (the daemon's, a foreground proxy's) spends the refresh token between our
read and the deletion, and none saves a new login after it. The revocation is bounded
by its timeouts and never keeps the login from being deleted: its outcome is reported.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcpkeeper.cli.errors import CliError

if TYPE_CHECKING:
    from mcpkeeper.auth.credentials import StoredLogin
    from mcpkeeper.auth.revocation import RevocationOutcome

__all__ = ["Forgotten", "forget_login", "print_revocation", "revocation_json", "stored_login"]

#: How long to wait for a refresh in progress (it holds the lock) before giving up.
_LOCK_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What ``forget_login`` did: whether there was a login, and its revocation's outcome."""

    existed: bool
    revocation: RevocationOutcome | None


def forget_login(home: Path, name: str, *, revoke: bool = True) -> Forgotten:
    """Revoke (unless ``revoke`` is False) and delete the login stored as ``name``."""
    from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError
    from mcpkeeper.state.locks import LockTimeout

    store = CredentialStore.open(home)
    lock = store.secrets.lock(name, timeout=_LOCK_TIMEOUT)
    try:
        lock.acquire()
    except LockTimeout:
        raise CliError(f"a refresh of {name!r} held its lock for {_LOCK_TIMEOUT:g}s; try again") from None
    try:
        try:
            login = store.load(name)
        except CredentialStoreError:
            login = None  # unreadable (moved aside by the store): nothing to revoke, still forgotten
        existed = login is not None or store.secrets.quarantined(name) is not None
        outcome = revoke_stored(login) if revoke and login is not None else None
        store.delete(name)
        store.secrets.discard_quarantined(name)
    finally:
        lock.release()
    return Forgotten(existed, outcome)


def stored_login(home: Path, name: str) -> StoredLogin | None:
    """The login stored as ``name``, or None (none, or unreadable)."""
    from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError

    try:
        return CredentialStore.open(home).load(name)
    except CredentialStoreError:
        return None


def revoke_stored(login: StoredLogin) -> RevocationOutcome:
    from mcpkeeper.auth.revocation import revoke_login

    return asyncio.run(revoke_login(login))


def print_revocation(outcome: RevocationOutcome | None) -> None:
    """One sentence about what the server was told, for people (a failure to stderr as a warning)."""
    if outcome is None:
        return
    if outcome.outcome == "revoked":
        print(f"The server revoked the {' and the '.join(t.replace('_', ' ') for t in outcome.revoked)}.")
    elif outcome.outcome == "not_offered":
        print(f"Not revoked at the server: {outcome.detail}.")
    else:
        detail = outcome.detail
        print(
            f"warning: could not revoke at the server ({detail}); the tokens were deleted here anyway",
            file=sys.stderr,
        )


def revocation_json(outcome: RevocationOutcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {
        "outcome": outcome.outcome,
        "detail": outcome.detail,
        "revoked": list(outcome.revoked),
        "endpoint": outcome.endpoint,
    }
