"""Per-workload log files: routed by task context, and never a token in them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from mcpkeeper.sanitize import redact
from mcpkeeper.workloads.logs import WorkloadLogRouter, workload_context

SECRET = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.sig-_~+/="


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {SECRET}",
        f"authorization=bearer {SECRET}",
        f'{{"access_token": "{SECRET}", "expires_in": 3600}}',
        f"grant_type=refresh_token&refresh_token={SECRET}&client_id=abc",
        f"client_secret={SECRET}",
        f"'code_verifier': '{SECRET}'",
    ],
)
def test_redact_blanks_token_shaped_text(text: str) -> None:
    cleaned = redact(text)
    assert SECRET not in cleaned and "sig" not in cleaned
    assert "[redacted]" in cleaned


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "token endpoint answered HTTP 403 with a non-OAuth body (text/html, 512 bytes); retry 2 in 400ms"
    assert redact(text) == text


async def test_records_go_to_the_file_of_the_workload_whose_task_emitted_them(tmp_path: Path) -> None:
    router = WorkloadLogRouter.install()
    logger = logging.getLogger("mcpkeeper.test_workload_logs")
    for name in ("a", "b"):
        router.open_file(name, tmp_path / f"{name}.log")

    async def work(name: str) -> None:
        with workload_context(name):
            # A task created inside the context inherits it, like a monitor or server task.
            await asyncio.create_task(_emit(logger, f"hello from {name}; Bearer {SECRET}"))

    try:
        await asyncio.gather(work("a"), work("b"))
        logger.info("from no workload")
    finally:
        for name in ("a", "b"):
            router.close_file(name)

    a_text, b_text = (tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text()
    assert "hello from a" in a_text and "hello from b" not in a_text
    assert "hello from b" in b_text and "hello from a" not in b_text
    assert "from no workload" not in a_text + b_text
    assert SECRET not in a_text + b_text
    assert (tmp_path / "a.log").stat().st_mode & 0o777 == 0o600


async def _emit(logger: logging.Logger, message: str) -> None:
    logger.info(message)
