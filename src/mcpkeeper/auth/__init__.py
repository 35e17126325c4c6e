"""Authentication: tokens, the token endpoint, error taxonomy and the token monitor.

Knows nothing of workloads or proxies; reports status through :class:`StatusSink`.
"""

from mcpkeeper.auth.clock import Clock, SystemClock
from mcpkeeper.auth.config import RetryConfig
from mcpkeeper.auth.errors import (
    AuthRetryingError,
    Failure,
    FailureKind,
    TokenEndpointError,
    TokenUnavailableError,
    UnauthenticatedError,
    classify,
)
from mcpkeeper.auth.monitor import AuthState, MonitoredTokenSource, MonitorSnapshot
from mcpkeeper.auth.protocols import ReachabilityProbe, Refresher, StatusSink, TokenProvider
from mcpkeeper.auth.token import Token
from mcpkeeper.auth.token_client import ClientCredentials, TokenEndpoint

__all__ = [
    "AuthRetryingError",
    "AuthState",
    "ClientCredentials",
    "Clock",
    "Failure",
    "FailureKind",
    "MonitorSnapshot",
    "MonitoredTokenSource",
    "ReachabilityProbe",
    "Refresher",
    "RetryConfig",
    "StatusSink",
    "SystemClock",
    "Token",
    "TokenEndpoint",
    "TokenEndpointError",
    "TokenProvider",
    "TokenUnavailableError",
    "UnauthenticatedError",
    "classify",
]
