"""Errors of the interactive login path (discovery, registration, browser, code exchange).

They all derive from :class:`LoginError` so the CLI can print any of them as one line
and exit non-zero. Their messages are written for the user: what failed, where, and
what to do; they never contain a token, a client secret or a response body.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationDeniedError",
    "CallbackError",
    "DiscoveryError",
    "LoginError",
    "LoginTimeoutError",
    "RegistrationError",
    "WWWAuthenticateError",
]


class LoginError(Exception):
    """A login could not be completed; ``str(exc)`` is a one-line explanation."""


class DiscoveryError(LoginError):
    """The server's or the authorization server's metadata is missing, unsafe or malformed."""


class WWWAuthenticateError(DiscoveryError):
    """The ``WWW-Authenticate`` header cannot be read or names a scheme we do not speak."""


class RegistrationError(LoginError):
    """Dynamic client registration failed or is not possible."""


class CallbackError(LoginError):
    """The browser came back to the callback without a usable authorization code."""


class AuthorizationDeniedError(CallbackError):
    """The user or the authorization server refused the authorization request."""


class LoginTimeoutError(LoginError):
    """Nobody completed the browser login in time."""
