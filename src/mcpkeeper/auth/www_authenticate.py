"""Reading the ``WWW-Authenticate`` header of a 401 (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1).

A protected MCP server names its resource metadata (and so its authorization server) in
this header. The grammar is subtle — several challenges may share one header, values are
tokens or quoted strings with backslash escapes — so it gets a real parser here rather
than a regular expression that would pick ``scope`` out of an unrelated ``Basic``
challenge or stop at an escaped quote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcpkeeper.auth.login_errors import WWWAuthenticateError

__all__ = [
    "BearerChallenge",
    "Challenge",
    "parse_challenges",
    "parse_www_authenticate",
    "parse_www_authenticate_or_none",
]

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WS = " \t"
_OAUTH_SCHEMES = ("bearer", "oauth")
_MAX_HEADER = 8192
_MAX_SHOWN = 60


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge: a scheme and either auth-params or a token68."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


@dataclass(frozen=True, slots=True)
class BearerChallenge:
    """The parts of a ``Bearer`` (or legacy ``OAuth``) challenge that discovery uses."""

    scheme: str
    realm: str | None = None
    resource_metadata: str | None = None
    scope: str | None = None
    error: str | None = None
    error_description: str | None = None


def parse_www_authenticate(header: str) -> BearerChallenge:
    """The OAuth challenge in ``header``; :class:`WWWAuthenticateError` if there is none.

    Several ``WWW-Authenticate`` header lines may be joined with ``", "`` beforehand.
    """
    challenges = parse_challenges(header)
    for challenge in challenges:
        if challenge.scheme.lower() in _OAUTH_SCHEMES:
            params = challenge.params
            return BearerChallenge(
                scheme=challenge.scheme,
                realm=params.get("realm"),
                resource_metadata=params.get("resource_metadata") or None,
                scope=params.get("scope") or None,
                error=params.get("error") or None,
                error_description=params.get("error_description") or None,
            )
    schemes = ", ".join(sorted({c.scheme for c in challenges}))
    raise WWWAuthenticateError(
        f"the server asks for {schemes} authentication; mcpkeeper speaks only OAuth (Bearer)"
    )


def parse_www_authenticate_or_none(header: str | None) -> BearerChallenge | None:
    """The OAuth challenge in ``header``, or None when there is no header or no readable challenge.

    For callers that only act on a challenge when there is a usable one (a remembered
    header, an upstream answer): an unreadable one is as good as none, discovery probes.
    """
    if not header:
        return None
    try:
        return parse_www_authenticate(header)
    except WWWAuthenticateError:
        return None


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in ``header``, in order; :class:`WWWAuthenticateError` on bad syntax."""
    if len(header) > _MAX_HEADER:
        raise WWWAuthenticateError(f"unreadable WWW-Authenticate header: over {_MAX_HEADER} characters")
    parser = _Parser(header)
    try:
        challenges = parser.challenges()
    except _SyntaxError as exc:
        raise WWWAuthenticateError(f"unreadable WWW-Authenticate header ({exc}): {_shown(header)}") from None
    if not challenges:
        raise WWWAuthenticateError("empty WWW-Authenticate header")
    return challenges


class _SyntaxError(Exception):
    pass


class _Parser:
    """A cursor over the header; one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def challenges(self) -> list[Challenge]:
        found: list[Challenge] = []
        self._skip_list_separators()
        while not self._at_end():
            found.append(self._challenge())
            self._skip_list_separators()
        return found

    def _challenge(self) -> Challenge:
        scheme = self._token()
        if not scheme:
            raise _SyntaxError(f"expected an auth scheme at position {self.pos}")
        if self._at_end() or self._next_is(","):
            return Challenge(scheme)
        if not self._next_is(" ") and not self._next_is("\t"):
            raise _SyntaxError(f"expected a space after the scheme {scheme!r}")
        self._skip(_WS)
        token68 = self._try_token68()
        if token68 is not None:
            return Challenge(scheme, token68=token68)
        return Challenge(scheme, params=self._params())

    def _params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        while True:
            start = self.pos
            name = self._token()
            self._skip(_WS)
            if not name or not self._next_is("="):
                # Not ``name=`` but the next challenge's scheme: give it back.
                self.pos = start
                if not params:
                    raise _SyntaxError(f"expected name=value at position {start}")
                return params
            self.pos += 1
            self._skip(_WS)
            if self._next_is('"'):
                value = self._quoted()
            else:
                value = self._token()
                if not value:
                    raise _SyntaxError(f"missing value for {name!r}")
            key = name.lower()
            if key in params:
                raise _SyntaxError(f"parameter {name!r} given twice")
            params[key] = value
            self._skip(_WS)
            if self._at_end():
                return params
            if not self._next_is(","):
                raise _SyntaxError(f"expected ',' after {name!r}")
            self._skip_list_separators()
            if self._at_end():
                return params

    def _try_token68(self) -> str | None:
        """A token68 (``1*tchar68 *"="``) that is the whole rest of this challenge, or None."""
        start = self.pos
        while not self._at_end() and self._peek() in _TOKEN68:
            self.pos += 1
        if self.pos == start:
            return None
        while self._next_is("="):
            self.pos += 1
        end = self.pos
        self._skip(_WS)
        if self._at_end() or self._next_is(","):
            return self.text[start:end]
        self.pos = start
        return None

    def _token(self) -> str:
        start = self.pos
        while not self._at_end() and self._peek() in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def _quoted(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        while not self._at_end():
            char = self._peek()
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                if self._at_end():
                    break
                out.append(self._peek())
                self.pos += 1
            else:
                out.append(char)
        raise _SyntaxError("unterminated quoted string")

    def _skip(self, chars: str) -> None:
        while not self._at_end() and self._peek() in chars:
            self.pos += 1

    def _skip_list_separators(self) -> None:
        self._skip(_WS + ",")

    def _next_is(self, char: str) -> bool:
        return not self._at_end() and self.text[self.pos] == char

    def _peek(self) -> str:
        return self.text[self.pos]

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)


def _shown(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"
