"""`make demo` stays true: the demo runs end to end, exits 0 and shows every transition."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.timeout(240)
def test_demo_runs_and_shows_the_transitions() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpkeeper.demo"],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-2000:]
    for expected in (
        "auth_retrying",
        "HTTP 503 with Retry-After",
        "back to running",
        "unauthenticated",
        "logged in again",
        "add(2, 40) → 42",
        "demo__echo → 'one endpoint for all'",
    ):
        assert expected in out, expected
    assert out.count("back to running") == 2  # the WAF outage and the refused one
