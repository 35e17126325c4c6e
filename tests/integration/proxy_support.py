"""Shared by the proxy and stdio-bridge tests: the TokenProvider seam, faked."""

from __future__ import annotations

from mcpkeeper.auth.errors import TokenUnavailableError
from mcpkeeper.auth.token import Token


class FakeProvider:
    """The TokenProvider seam: hands out ``tokens[i]``; ``force_refresh`` moves to the next one."""

    def __init__(self, *tokens: str, error: TokenUnavailableError | None = None) -> None:
        self.tokens = list(tokens) or ["token-0"]
        self.index = 0
        self.error = error
        self.refresh_error: TokenUnavailableError | None = None
        self.rejected: list[str] = []
        self.token_calls = 0

    async def token(self) -> Token:
        self.token_calls += 1
        if self.error is not None:
            raise self.error
        return Token(access_token=self.tokens[self.index])

    async def force_refresh(self, rejected: Token) -> Token:
        self.rejected.append(rejected.access_token)
        if self.refresh_error is not None:
            raise self.refresh_error
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return Token(access_token=self.tokens[self.index])
