"""Configuration from the environment (architecture.md §5) and Go-style durations."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from mcpkeeper.auth.config import _ENV, RetryConfig
from mcpkeeper.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2h45m30.5s", 9930.5),
        ("0", 0.0),
        ("-5s", -5.0),
        ("100us", 0.0001),
        ("100µs", 0.0001),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "5 m", "1d", "m", "1h-5m", "1.2.3s"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.12, "120ms"), (45, "45s"), (1.5, "1.5s"), (600, "10m"), (5400, "1h30m"), (86400, "24h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_reuse_grace_is_off_by_default_and_can_be_set_or_switched_off() -> None:
    assert RetryConfig.from_env({}).reuse_grace == 0
    assert RetryConfig.from_env({"MCPKEEPER_TOKEN_REFRESH_REUSE_GRACE": "30s"}).reuse_grace == 30
    assert RetryConfig.from_env({"MCPKEEPER_TOKEN_REFRESH_REUSE_GRACE": "0"}).reuse_grace == 0


def test_format_duration_of_infinity_does_not_overflow() -> None:
    assert format_duration(float("inf")) == "forever"
    assert format_duration(float("nan")) == "unknown"


def test_defaults_match_the_design() -> None:
    cfg = RetryConfig.from_env({})
    short = (cfg.initial_retry_interval, cfg.max_retry_interval, cfg.max_tries, cfg.max_elapsed)
    assert short == (10, 120, 5, 300)
    assert (cfg.retrying_tick, cfg.retrying_ceiling, cfg.refresh_ahead) == (600, 86400, 0.75)


def test_every_variable_is_read() -> None:
    env = {}
    expected = {}
    for field, (suffix, kind) in _ENV.items():
        if kind in ("duration", "duration_or_off"):
            env["MCPKEEPER_" + suffix] = "7s"
            expected[field] = 7.0
        elif kind == "int":
            env["MCPKEEPER_" + suffix] = "7"
            expected[field] = 7
        else:
            env["MCPKEEPER_" + suffix] = "0.5"
            expected[field] = 0.5
    cfg = RetryConfig.from_env(env)
    for field, value in expected.items():
        assert getattr(cfg, field) == value, field


def test_toolhive_names_are_fallbacks_and_ours_win() -> None:
    cfg = RetryConfig.from_env(
        {
            "TOOLHIVE_TOKEN_AUTH_RETRYING_TICK_INTERVAL": "5m",
            "TOOLHIVE_TOKEN_AUTH_RETRYING_MAX_ELAPSED": "2h",
            "MCPKEEPER_TOKEN_AUTH_RETRYING_MAX_ELAPSED": "3h",
        }
    )
    assert cfg.retrying_tick == 300
    assert cfg.retrying_ceiling == 3 * 3600


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCPKEEPER_TOKEN_REFRESH_INITIAL_RETRY_INTERVAL", "soon"),
        ("MCPKEEPER_TOKEN_REFRESH_MAX_RETRY_INTERVAL", "0s"),
        ("MCPKEEPER_TOKEN_REFRESH_MAX_TRIES", "-3"),
        ("MCPKEEPER_TOKEN_REFRESH_MAX_TRIES", "many"),
        ("MCPKEEPER_TOKEN_AUTH_RETRYING_MAX_ELAPSED", "-1h"),
        ("MCPKEEPER_TOKEN_REFRESH_AHEAD", "1.5"),
        ("MCPKEEPER_TOKEN_REFRESH_AHEAD", "0"),
        ("MCPKEEPER_TOKEN_REFRESH_AHEAD", "nan"),
        ("MCPKEEPER_TOKEN_REFRESH_AHEAD", "NaN"),
        ("MCPKEEPER_TOKEN_REFRESH_AHEAD", "inf"),
        ("MCPKEEPER_TOKEN_REFRESH_MAX_TRIES", "1e3"),
        ("MCPKEEPER_TOKEN_AUTH_RETRYING_TICK_INTERVAL", "9" * 400 + "h"),
        ("MCPKEEPER_TOKEN_REFRESH_REUSE_GRACE", "-5s"),
    ],
)
def test_invalid_values_fall_back_with_one_warning(
    name: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mcpkeeper.auth.config"):
        cfg = RetryConfig.from_env({name: value})
    assert cfg == RetryConfig()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert name in warnings[0].getMessage()


def test_config_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryConfig().max_tries = 3  # type: ignore[misc]
