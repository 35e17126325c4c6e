"""PKCE S256 (RFC 7636): the challenge is the RFC's own example, the verifier has the allowed shape."""

from __future__ import annotations

import re

from mcpkeeper.auth.pkce import PkcePair, s256_challenge


def test_s256_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_generated_pairs_are_fresh_and_well_formed() -> None:
    first, second = PkcePair.generate(), PkcePair.generate()
    assert first.verifier != second.verifier
    for pair in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", pair.verifier)
        assert pair.challenge == s256_challenge(pair.verifier)
        assert pair.method == "S256"
        assert "=" not in pair.challenge
