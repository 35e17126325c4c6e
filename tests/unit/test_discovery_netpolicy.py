"""The pure rules of architecture.md §7 that discovery applies: address classes, HTTPS, private targets."""

from __future__ import annotations

import pytest

from mcpkeeper.auth.login_errors import DiscoveryError, RegistrationError
from mcpkeeper.auth.netpolicy import (
    TargetPolicy,
    address_is_private,
    is_loopback_host,
    require_secure_endpoint,
    same_origin,
    target_allowed,
)


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("127.10.20.30", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("172.31.255.255", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata service
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd12:3456::1", True),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped private
        ("::ffff:127.0.0.1", True),
        ("[::1]", True),
        ("fe80::1%eth0", True),
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("172.32.0.1", False),
        ("100.128.0.1", False),
        ("2606:4700:4700::1111", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_address_classification(address: str, private: bool) -> None:
    assert address_is_private(address) is private


def test_a_host_name_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        address_is_private("example.com")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("remote_private", "target_private", "allowed"),
    [
        (False, False, True),  # public server, public AS
        (False, True, False),  # public server pointing into the LAN: refused
        (True, True, True),  # company-internal server, internal AS
        (True, False, True),  # internal server, public AS (e.g. a cloud IdP)
    ],
)
def test_target_policy(remote_private: bool, target_private: bool, allowed: bool) -> None:
    assert target_allowed(remote_private=remote_private, target_private=target_private) is allowed


@pytest.mark.parametrize(
    "url",
    [
        "https://as.example.com/authorize",
        "https://10.0.0.1/token",
        "http://127.0.0.1:8080/token",
        "http://localhost/authorize",
        "http://[::1]:9000/authorize",
    ],
)
def test_secure_endpoints_are_accepted(url: str) -> None:
    require_secure_endpoint(url, "authorization endpoint")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://as.example.com/authorize", "must use https"),
        ("http://10.0.0.1/authorize", "must use https"),
        ("http://192.168.1.5:8080/token", "must use https"),
        ("ftp://as.example.com/authorize", r"not an http\(s\) URL"),
        ("javascript:alert(1)", r"not an http\(s\) URL"),
        ("https:///nohost", r"not an http\(s\) URL"),
    ],
)
def test_insecure_endpoints_are_refused(url: str, why: str) -> None:
    with pytest.raises(DiscoveryError, match=why):
        require_secure_endpoint(url, "authorization endpoint")


def test_the_error_type_follows_the_caller() -> None:
    with pytest.raises(RegistrationError):
        require_secure_endpoint("http://as.example.com/register", "registration", error=RegistrationError)


def test_same_origin_fills_default_ports_and_ignores_case() -> None:
    assert same_origin("https://A.example.com/x", "https://a.example.com:443/y")
    assert same_origin("http://h/x", "http://h:80/")
    assert not same_origin("https://a.example.com/", "http://a.example.com/")
    assert not same_origin("https://a.example.com/", "https://a.example.com:8443/")
    assert not same_origin("https://a.example.com/", "https://b.example.com/")


async def test_policy_of_a_public_remote_refuses_literal_private_targets() -> None:
    policy = TargetPolicy("https://8.8.8.8/mcp", remote_private=False)
    await policy.check("https://1.1.1.1/token", "token endpoint")
    for target in (
        "https://10.0.0.1/token",
        "http://127.0.0.1:9/token",
        "https://[::1]/token",
        "https://localhost/x",
    ):
        with pytest.raises(DiscoveryError, match="points to a private-network address"):
            await policy.check(target, "token endpoint")


async def test_policy_of_a_loopback_remote_allows_private_targets() -> None:
    policy = await TargetPolicy.for_remote("http://127.0.0.1:8000/mcp")
    assert policy.remote_private
    await policy.check("http://127.0.0.1:9000/token", "token endpoint")
    await policy.check("https://10.0.0.1/token", "token endpoint")
    await policy.check("https://8.8.8.8/token", "token endpoint")


async def test_policy_of_a_private_remote_is_private() -> None:
    assert (await TargetPolicy.for_remote("https://10.20.30.40/mcp")).remote_private
    assert not (await TargetPolicy.for_remote("https://9.9.9.9/mcp")).remote_private


async def test_policy_refuses_a_target_without_host() -> None:
    policy = TargetPolicy("https://8.8.8.8/mcp", remote_private=False)
    with pytest.raises(DiscoveryError, match="no host name"):
        await policy.check("https:///token", "token endpoint")
