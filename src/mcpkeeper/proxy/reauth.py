"""The proxy's seam for authorization the upstream asks for *during* the session.

Two answers from an MCP server mean that the token we hold (or the lack of one) does not
cover a request that other requests went through with:

* ``401`` to a workload that has no login: the server let ``initialize`` through and
  wants authorization only for what follows ("authorization appears later");
* ``403`` with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="…"``: the
  server wants more scopes for this request (step-up authorization).

What to do about it depends on who started the proxy, which the proxy cannot know: a
person in the foreground (``mcpkeeper proxy``) can log in right now, the daemon must never
open a browser from the background. So the proxy hands the need to a
:class:`Reauthorizer` (the workload runtime's) and either gets a token provider that now
covers it (then the request is replayed once) or an :class:`AuthorizationRefused` to
answer with. Without a reauthorizer the proxy behaves as before: the 403 passes through,
the 401 is refused with "run `mcpkeeper login NAME`".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mcpkeeper.auth.protocols import TokenProvider
from mcpkeeper.auth.token import Token
from mcpkeeper.auth.www_authenticate import BearerChallenge, parse_www_authenticate_or_none

__all__ = ["AuthorizationNeeded", "AuthorizationRefused", "Reauthorizer", "authorization_needed"]

_INSUFFICIENT_SCOPE = "insufficient_scope"


@dataclass(frozen=True, slots=True)
class AuthorizationNeeded:
    """What the upstream asked for, and with which token (None: none was sent)."""

    status: int
    challenge: BearerChallenge | None
    sent: Token | None

    @property
    def step_up(self) -> bool:
        return self.status == 403

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes the challenge names (empty when it names none)."""
        if self.challenge is None or not self.challenge.scope:
            return ()
        return tuple(dict.fromkeys(self.challenge.scope.split()))


class AuthorizationRefused(Exception):
    """The need cannot be met now; ``status``/``kind``/``message`` become the proxy's reply."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class Reauthorizer(Protocol):
    async def authorize(self, need: AuthorizationNeeded) -> TokenProvider:
        """A provider whose token covers ``need`` (after a login, or because one already happened).

        Raises :class:`AuthorizationRefused` when it cannot be had (the daemon; a login
        that failed; a challenge already tried too often).
        """
        ...


def authorization_needed(
    status: int, www_authenticate: str | None, sent: Token | None, has_provider: bool
) -> AuthorizationNeeded | None:
    """The need behind an upstream answer, or None when the answer is not one of the two cases."""
    challenge = parse_www_authenticate_or_none(www_authenticate)
    if status == 401 and (sent is None or not has_provider):
        return AuthorizationNeeded(401, challenge, None)
    if status == 403 and challenge is not None and challenge.error == _INSUFFICIENT_SCOPE:
        return AuthorizationNeeded(403, challenge, sent)
    return None
