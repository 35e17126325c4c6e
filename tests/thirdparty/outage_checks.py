"""The two special scenarios: the echoed refresh token (collect every output, look for the
secret) and the full disk (a tmpfs ``MCPKEEPER_HOME`` filled while a rotation is answered)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.integration.cli_support import run_cli
from tests.thirdparty.outage_backends import ScenarioBackend, ok_refreshes
from tests.thirdparty.outage_client import Workload, until, vmcp_call, watch_recovery
from tests.thirdparty.outage_model import NAME, TIMED_LEAD, Observed, OutageSpec, now, read_status


async def collect_leak_outputs(
    spec: OutageSpec, backend: ScenarioBackend, workload: Workload, observed: Observed, work: Path
) -> None:
    """Everything a user or a client sees after the token endpoint echoed the refresh token."""
    with contextlib.suppress(TimeoutError):
        await until(
            lambda: (read_status(workload.home) or ("running", ""))[0] != "running",
            spec.access_ttl + 15,
            "status change",
        )
    await asyncio.sleep(3.0)  # a few client calls meet the consequence
    outputs = workload.outputs
    for args in (
        ("list",),
        ("list", "-o", "json"),
        ("status", NAME),
        ("status", NAME, "-o", "json"),
        ("logs", NAME),
    ):
        done = await asyncio.to_thread(run_cli, workload.home, *args, env=workload.env)
        outputs[f"{' '.join(args)} (stdout)"] = done.stdout
        outputs[f"{' '.join(args)} (stderr)"] = done.stderr
    if workload.local_url is not None:
        outputs["raw POST to the local URL"] = await _raw_post(workload.local_url)
    outputs.update(await _api_and_vmcp(workload))
    for call in observed.calls:
        if not call.ok:
            outputs.setdefault("client errors", "")
            outputs["client errors"] += call.error + "\n"
    observed.notes["leak"] = _find_leaks(workload, outputs, work, observed, backend)


#: A window this long of a random token found anywhere is a leak of (part of) the secret.
_LEAK_WINDOW = 16


def _find_leaks(
    workload: Workload, outputs: dict[str, str], work: Path, observed: Observed, backend: ScenarioBackend
) -> dict[str, Any]:
    """Where the echoed refresh token (or any 16-character piece of it) shows up.

    Searched: every captured output (CLI stdout/stderr, API replies, the local URL's reply,
    the vMCP reply, the client's errors) and every file under the work directory and
    ``MCPKEEPER_HOME`` except the secret store, where the token belongs.
    """
    from mcpkeeper.auth.credentials import CredentialStore

    stored = CredentialStore.open(workload.home).load(NAME)
    token = stored.token.refresh_token if stored is not None and stored.token is not None else None
    if not token:
        return {"checked": False, "why": "no stored refresh token to look for"}
    echoed = backend.echoed_digests()
    presented = hashlib.sha256(token.encode()).hexdigest()
    windows = {token[i : i + _LEAK_WINDOW] for i in range(0, max(1, len(token) - _LEAK_WINDOW + 1))}
    found: list[str] = []
    searched = 0
    for where, text in outputs.items():
        searched += 1
        if any(w in text for w in windows):
            found.append(f"output: {where}")
    secrets = workload.home / "secrets"
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        if secrets in path.parents:
            continue
        searched += 1
        data = path.read_bytes().decode("utf-8", "replace")
        if any(w in data for w in windows):
            found.append(f"file: {path.relative_to(work)}")
    return {
        "checked": True,
        "echoed_token_is_the_stored_one": presented in echoed,
        "echo_requests": len(echoed),
        "searched": searched,
        "found": found,
    }


async def _raw_post(url: str) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    try:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            answer = await http.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"error: {exc}"
    return f"{answer.status_code}\n{answer.headers}\n{answer.text}"


async def _api_and_vmcp(workload: Workload) -> dict[str, str]:
    """The daemon's control API (Unix socket) and the aggregated endpoint's reply."""
    out: dict[str, str] = {}
    if workload.spec.mode != "connect":
        return out
    from mcpkeeper.api.paths import API_PREFIX, socket_path

    transport = httpx.AsyncHTTPTransport(uds=str(socket_path(workload.home)))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://mcpkeeper", timeout=10) as api:
            for path in (f"{API_PREFIX}/workloads?all=true", f"{API_PREFIX}/workloads/{NAME}"):
                answer = await api.get(path)
                out[f"API GET {path}"] = f"{answer.status_code} {answer.text}"
    except httpx.HTTPError as exc:
        out["API error"] = str(exc)
    out["vMCP call"] = await vmcp_call(workload.home)
    return out


# -- disk full ----------------------------------------------------------------------------------

_TMPFS_SIZE = "8m"


def mount_tmpfs(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={_TMPFS_SIZE},mode=0700", "tmpfs", str(home)],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}")


def unmount_tmpfs(home: Path) -> None:
    subprocess.run(["umount", "-l", str(home)], capture_output=True, check=False, timeout=10)


def _fill(home: Path) -> Path:
    """Write zeros until the file system is full; returns the filler to delete later."""
    filler = home / "filler.bin"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        for _ in range(100_000):  # bounded: 6.5 GB, far beyond the tmpfs
            try:
                f.write(chunk)
            except OSError:
                break
    # Fill the last bytes too, smaller and smaller.
    for size in (4096, 512, 1):
        with contextlib.suppress(OSError), open(filler, "ab", buffering=0) as f:
            for _ in range(10_000):
                f.write(b"\0" * size)
    return filler


async def fill_disk_at_next_refresh(
    spec: OutageSpec,
    backend: ScenarioBackend,
    workload: Workload,
    observed: Observed,
    last: float,
    period: float,
) -> None:
    """Fill the disk just before the next refresh is due, keep it full, give the space back."""
    await asyncio.sleep(max(0.0, last + period - TIMED_LEAD - now()))
    filler = await asyncio.to_thread(_fill, workload.home)
    observed.fault_on = now()
    if ok_refreshes(backend, since=last + 0.001):
        raise RuntimeError("the refresh came before the disk was full: the prediction missed")
    before = len(ok_refreshes(backend))
    with contextlib.suppress(TimeoutError):
        await until(
            lambda: len(ok_refreshes(backend)) > before, spec.access_ttl + 10, "a rotation on a full disk"
        )
    observed.notes["rotated_while_full"] = len(ok_refreshes(backend)) > before
    await asyncio.sleep(max(0.0, observed.fault_on + spec.full_for - now()))
    filler.unlink()
    observed.restore_at = now()
    # Two more rotation periods: the kept token set must be saved and keep rotating.
    await asyncio.sleep(max(2 * period, 8.0))
    await watch_recovery(spec, observed)
    observed.notes["status_after_space_returned"] = read_status(workload.home)
    observed.end_at = now()  # mcpkeeper is stopped next: the calls after this are not its answers
    observed.notes["stored_refresh_token_accepted"] = await _stored_token_accepted(workload)


async def _stored_token_accepted(workload: Workload) -> dict[str, Any]:
    """Stop mcpkeeper, then present the refresh token it stored to the token endpoint."""
    await workload.stop()
    from mcpkeeper.auth.credentials import CredentialStore

    stored = CredentialStore.open(workload.home).load(NAME)
    if stored is None or stored.token is None or not stored.token.refresh_token:
        return {"accepted": False, "why": "no stored refresh token"}
    form = {
        "grant_type": "refresh_token",
        "refresh_token": stored.token.refresh_token,
        "client_id": stored.client.client_id,
    }
    if stored.resource:
        form["resource"] = stored.resource
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        answer = await http.post(stored.token_endpoint, data=form)
    error = ""
    with contextlib.suppress(ValueError, AttributeError):
        error = str(answer.json().get("error", ""))
    return {"accepted": answer.status_code == 200, "status": answer.status_code, "error": error}
