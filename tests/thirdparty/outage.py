"""One outage, end to end: the real CLI, the official MCP client, a real authorization server.

    python -m tests.thirdparty.outage --fault refused --mode port --outage 20 --json

Starts the authorization server (``oidc``: oidc-provider behind our fault proxy, see
:mod:`tests.thirdparty.oidc`; ``fixture``: our own fixture AS and MCP server), has
``mcpkeeper`` log in with a scripted ``$BROWSER`` and serve the MCP server in one of three
ways (``stdio``: ``mcpkeeper proxy URL --stdio``; ``connect``: ``mcpkeeper run`` then
``mcpkeeper connect NAME``; ``port``: ``mcpkeeper proxy URL --port N``), and drives it with
the ``mcp`` SDK's client calling ``echo`` once a second. After one successful rotation it
breaks the token endpoint *when the next refresh falls due* (the fault is armed on the next
refresh request; ``refused``, which no request can arm, is switched at the time the
previous rotation predicts), keeps it broken for ``--outage`` seconds, restores it and
watches the recovery. The workload's status file is sampled every 0.1 s and read again
the moment a call fails.

Prints one JSON object: the raw observations (calls, status changes, token requests,
times in seconds from the moment the fault took effect) and the figures the issue-7
targets are about (see :func:`summarise`). It asserts nothing: the integration tests and
``bench/bench_outage.py`` judge the figures.

Special runs: ``--fault none`` is a rotation smoke test (``--rotations`` refreshes, no
fault); ``invalid_grant`` waits for ``unauthenticated``, restores the endpoint and runs
``mcpkeeper login NAME`` (``connect`` mode only); ``echo_refresh_token`` collects every
output a user or client can see for the leak check; ``disk_full`` puts ``MCPKEEPER_HOME``
on a small tmpfs and fills it while a rotation's answer is on its way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import traceback
from contextlib import AsyncExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mcpkeeper.testing.faults import FaultMode
from tests.integration.cli_support import run_cli
from tests.thirdparty.outage_backends import FixtureBackend, ScenarioBackend, ok_refreshes, open_backend
from tests.thirdparty.outage_checks import (
    collect_leak_outputs,
    fill_disk_at_next_refresh,
    mount_tmpfs,
    unmount_tmpfs,
)
from tests.thirdparty.outage_client import Caller, Workload, brief, sample_statuses, until, watch_recovery
from tests.thirdparty.outage_model import (
    LOGIN_TIMEOUT,
    NAME,
    TIMED_FAULTS,
    TIMED_LEAD,
    Observed,
    OutageSpec,
    now,
    raw_observations,
    read_status,
    summarise,
)

__all__ = ["main", "run_outage"]


# -- the scenario ------------------------------------------------------------------------------


async def run_outage(spec: OutageSpec, work: Path) -> dict[str, Any]:
    """Run one scenario in ``work`` (a fresh directory) and return its observations and figures."""
    observed = Observed()
    home = work / "home"
    if spec.fault == "disk_full":
        mount_tmpfs(home)
    home.mkdir(exist_ok=True)
    error: str | None = None
    try:
        async with open_backend(spec, work) as backend:
            workload = Workload(spec, backend.mcp_url, home, work)
            try:
                async with AsyncExitStack() as stack:
                    stack.push_async_callback(workload.stop)
                    await workload.start()
                    error = await _drive(spec, backend, workload, observed, work)
            finally:
                observed.token_requests = backend.token_requests()
                observed.spent_token_reuse = backend.spent_token_reuse()
                observed.notes.setdefault("outputs", {}).update(workload.outputs)
    except Exception as exc:
        error = f"{brief(exc)}\n{traceback.format_exc()[-3000:]}"
    finally:
        if spec.fault == "disk_full":
            unmount_tmpfs(home)
    return {"spec": asdict(spec), "error": error, **summarise(observed), "raw": raw_observations(observed)}


async def _drive(
    spec: OutageSpec, backend: ScenarioBackend, workload: Workload, observed: Observed, work: Path
) -> str | None:
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_statuses(workload.home, observed, stop_sampling))
    caller = Caller(workload, observed)
    calling = asyncio.create_task(caller.run())
    try:
        await until(lambda: any(c.ok for c in observed.calls), LOGIN_TIMEOUT, "the first good call")
        if spec.fault == "none":
            await _smoke(spec, backend, observed)
        else:
            await _outage(spec, backend, workload, observed, work)
    finally:
        caller.stop()
        stop_sampling.set()
        for task in (calling, sampler):
            try:
                await asyncio.wait_for(task, spec.call_timeout + 10)
            except Exception as exc:
                observed.notes.setdefault("task_errors", []).append(brief(exc))
        observed.notes["client_sessions"] = caller.sessions
        observed.notes["session_errors"] = caller.session_errors[:20]
    return None


async def _smoke(spec: OutageSpec, backend: ScenarioBackend, observed: Observed) -> None:
    """``rotations`` refreshes while the client calls, and a call on the last token."""
    since = observed.calls[0].start
    await until(
        lambda: len(ok_refreshes(backend, since=since)) >= spec.rotations,
        spec.access_ttl * (spec.rotations + 2) + 30,
        f"{spec.rotations} rotations",
    )
    last = ok_refreshes(backend)[-1]
    await until(lambda: any(c.start > last for c in observed.calls), 10, "a call on the last rotated token")


async def _outage(
    spec: OutageSpec, backend: ScenarioBackend, workload: Workload, observed: Observed, work: Path
) -> None:
    fault = "ok" if spec.fault == "disk_full" else spec.fault
    timed = spec.fault == "disk_full" or fault in TIMED_FAULTS or isinstance(backend, FixtureBackend)
    # Good rotations first: they prove the path, and (for a fault switched at a time) the
    # interval between two of them predicts when the next refresh falls due.
    needed = 2 if timed else 1
    await until(
        lambda: len(ok_refreshes(backend)) >= needed,
        spec.access_ttl * (needed + 2) + 60,
        "the first rotations",
    )
    oks = ok_refreshes(backend)
    period = oks[-1] - oks[-2] if len(oks) >= 2 else None
    observed.notes["rotation_period"] = None if period is None else round(period, 3)
    if spec.fault == "disk_full":
        assert period is not None
        await fill_disk_at_next_refresh(spec, backend, workload, observed, oks[-1], period)
        return
    if timed:
        assert period is not None
        await asyncio.sleep(max(0.0, oks[-1] + period - TIMED_LEAD - now()))
        await backend.switch(fault)
        if ok_refreshes(backend, since=oks[-1] + 0.001):
            raise RuntimeError("the refresh came before the timed fault began: the prediction missed")
    else:
        await backend.arm(fault)
        await until(lambda: backend.fault_since() is not None, spec.access_ttl * 3 + 60, "the armed fault")
    since = backend.fault_since()
    assert since is not None
    observed.fault_on = since
    if spec.fault == "invalid_grant":
        await _relogin(spec, backend, workload, observed)
        return
    if spec.fault == "echo_refresh_token":
        await collect_leak_outputs(spec, backend, workload, observed, work)
        return
    await asyncio.sleep(max(0.0, since + spec.outage - now()))
    await backend.switch("ok")
    observed.restore_at = now()
    await watch_recovery(spec, observed)
    if spec.wait_refresh:
        restored = observed.restore_at
        with contextlib.suppress(TimeoutError):
            await until(
                lambda: bool(ok_refreshes(backend, since=restored)),
                max(0.0, restored + spec.after_restore - now()),
                "a refresh after the restore",
            )


async def _relogin(
    spec: OutageSpec, backend: ScenarioBackend, workload: Workload, observed: Observed
) -> None:
    """invalid_grant: the workload must say ``unauthenticated``; ``login NAME`` brings it back."""
    with contextlib.suppress(TimeoutError):
        await until(
            lambda: (read_status(workload.home) or ("", ""))[0] == "unauthenticated",
            spec.access_ttl + 15,
            "unauthenticated",
        )
    observed.notes["unauthenticated_seen"] = (read_status(workload.home) or ("", ""))[0] == "unauthenticated"
    await asyncio.sleep(2.0)  # a couple of calls against the dead workload
    await backend.switch("ok")
    if spec.mode != "connect":
        observed.notes["relogin"] = (
            "skipped: login NAME re-authenticates daemon workloads (use --mode connect)"
        )
        return
    done = await asyncio.to_thread(
        run_cli, workload.home, "login", NAME, env=workload.env, timeout=LOGIN_TIMEOUT
    )
    observed.restore_at = now()
    observed.notes["relogin"] = {"returncode": done.returncode, "stderr": done.stderr[-1500:]}
    workload.outputs["login.stderr"] = done.stderr
    await watch_recovery(spec, observed)


# -- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.thirdparty.outage", description=__doc__)
    parser.add_argument(
        "--fault",
        default="none",
        choices=["none", *(m.value for m in FaultMode if m.value != "ok"), "disk_full"],
    )
    parser.add_argument("--mode", default="port", choices=["stdio", "connect", "port"])
    parser.add_argument("--backend", default="oidc", choices=["oidc", "fixture"])
    parser.add_argument("--access-ttl", type=int, default=15)
    parser.add_argument("--outage", type=float, default=20.0)
    parser.add_argument("--after-restore", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=6.0)
    parser.add_argument("--rotations", type=int, default=3)
    parser.add_argument("--wait-refresh", action="store_true", help="wait for a refresh after restore")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory, removed")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = OutageSpec(
        fault=args.fault,
        mode=args.mode,
        backend=args.backend,
        access_ttl=args.access_ttl,
        outage=args.outage,
        after_restore=args.after_restore,
        settle=args.settle,
        rotations=args.rotations,
        wait_refresh=args.wait_refresh,
        env=dict(item.split("=", 1) for item in args.env),
    )
    keep = args.workdir is not None
    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"outage-{spec.fault}-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = asyncio.run(run_outage(spec, work))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result)
    print(text if args.json else json.dumps(result, indent=2), flush=True)
    return 0 if result["error"] is None else 1


def _main_guard() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _main_guard()
