"""The one sanitiser for server text: secrets, escapes, one line, bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpkeeper.auth.token import Token
from mcpkeeper.sanitize import REDACTED, forget_secrets, redact, remember_secret, server_text


@pytest.fixture(autouse=True)
def _clean_registry() -> None:
    forget_secrets()


def test_a_token_value_is_redacted_wherever_it_appears() -> None:
    Token(access_token="at-0123456789abcdef", refresh_token="rt-SECRET-fedcba9876543210")
    text = 'invalid_grant: refresh token rt-SECRET-fedcba9876543210 was already used (at-0123456789abcdef)'
    out = server_text(text)
    assert "rt-SECRET" not in out and "at-0123456789" not in out
    assert out.count(REDACTED) == 2


def test_a_url_encoded_secret_is_redacted_too() -> None:
    remember_secret("a+b/c=d-0123456789")
    assert "0123456789" not in redact("x=a%2Bb%2Fc%3Dd-0123456789&y=1")


def test_short_values_are_not_remembered() -> None:
    remember_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_token_shaped_text_is_blanked_without_being_known() -> None:
    assert "zzz" not in redact("Authorization: Bearer zzzzzzzzzzzz")
    assert "qqq" not in redact('{"refresh_token": "qqqqqqqq"}')


def test_ansi_escapes_newlines_and_bidi_overrides_are_removed() -> None:
    text = "bad\x1b[2J\x1b[31missuer\x1b[0m\r\nsecond line\x07 \u202etxt.exe\x1b]0;title\x07 end"
    out = server_text(text)
    assert out == "bad issuer second line txt.exe end"


def test_length_is_bounded_with_an_ellipsis() -> None:
    out = server_text("x" * 1000, limit=50)
    assert len(out) == 50 and out.endswith("…")


def test_truncation_never_leaves_part_of_a_secret() -> None:
    secret = "S" * 40 + "-secret-tail"
    remember_secret(secret)
    out = server_text("y" * 30 + secret, limit=45)
    assert "SSSS" not in out


def test_the_registry_is_bounded() -> None:
    for i in range(1100):
        remember_secret(f"value-{i:08d}")
    assert redact("value-00000000") == "value-00000000"  # the oldest was forgotten
    assert redact("value-00001099") == REDACTED


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_becomes_one_printable_bounded_line(text: str) -> None:
    out = server_text(text, limit=120)
    assert len(out) <= 120
    assert "\n" not in out and "\r" not in out and "\x1b" not in out
    assert all(ch == " " or ch.isprintable() for ch in out)
    assert out == out.strip()
