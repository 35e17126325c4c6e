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
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from mcpkeeper.testing.counters import TokenCounters
from mcpkeeper.testing.faults import FaultMode

__all__ = ["OutageSpec", "main", "run_outage", "summarise"]

Mode = Literal["stdio", "connect", "port"]
Backend = Literal["oidc", "fixture"]
NAME = "op"
_CLI = [sys.executable, "-m", "mcpkeeper"]
#: Faults no request can arm: switched at the predicted refresh time instead.
_TIMED_FAULTS = {"refused"}
#: A timed fault begins this long before the refresh is predicted to fall due.
_TIMED_LEAD = 1.0
_SAMPLE_EVERY = 0.1
_CALL_EVERY = 1.0
_LOGIN_TIMEOUT = 60.0
_STATUS_FILE_GLOB = "statuses"


@dataclass
class OutageSpec:
    fault: str = "none"
    mode: Mode = "port"
    backend: Backend = "oidc"
    access_ttl: int = 15
    outage: float = 20.0
    #: How long to keep watching after the restore when the first good call never comes.
    after_restore: float = 30.0
    #: Calls kept going after the first good call, to count refusals that follow it.
    settle: float = 6.0
    #: For ``--fault none``: successful rotations to see before stopping.
    rotations: int = 3
    call_timeout: float = 20.0
    #: Extra ``MCPKEEPER_*`` settings for the CLI (e.g. a refresh-ahead for 1 h tokens).
    env: dict[str, str] = field(default_factory=dict)
    #: For ``disk_full``: how long the disk stays full.
    full_for: float = 12.0
    #: Also wait (up to ``after_restore``) for the first successful refresh after the
    #: restore, so ``refreshed_after_restore`` is measured even when no call was refused.
    wait_refresh: bool = False


# -- observations ----------------------------------------------------------------------------


@dataclass
class Call:
    start: float
    end: float
    ok: bool
    error: str = ""
    #: Status file read the moment a failed call returned.
    status_then: str | None = None


@dataclass
class Observed:
    calls: list[Call] = field(default_factory=list)
    #: (time, status, reason) at each change seen by the 0.1 s sampler.
    statuses: list[tuple[float, str, str]] = field(default_factory=list)
    samples: int = 0
    #: (arrival, grant_type, fault, outcome) of every token request.
    token_requests: list[tuple[float, str, str, str]] = field(default_factory=list)
    spent_token_reuse: int = 0
    fault_on: float | None = None
    restore_at: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _now() -> float:
    return time.time()


def _status_path(home: Path) -> Path:
    return home / _STATUS_FILE_GLOB / f"{NAME}.json"


def read_status(home: Path) -> tuple[str, str] | None:
    """(status, reason) from the workload's status file, as ``mcpkeeper list`` reads it."""
    try:
        data = json.loads(_status_path(home).read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("status")), str(data.get("status_context", ""))


# -- backends ---------------------------------------------------------------------------------


class _Backend(Protocol):
    mcp_url: str

    async def switch(self, mode: str) -> None: ...

    async def arm(self, mode: str) -> None: ...

    def fault_since(self) -> float | None: ...

    def token_requests(self) -> list[tuple[float, str, str, str]]: ...

    def spent_token_reuse(self) -> int: ...

    def echoed_digests(self) -> list[str]: ...


class _OidcBackend:
    def __init__(self, stack: Any) -> None:
        self._stack = stack
        self.mcp_url: str = stack.mcp_url

    async def switch(self, mode: str) -> None:
        await self._stack.faults.set_fault(mode, retry_after=5)

    async def arm(self, mode: str) -> None:
        await self._stack.faults.set_fault(mode, retry_after=5, on_next_refresh=True)

    def fault_since(self) -> float | None:
        since: float | None = self._stack.faults.fault_since
        return since

    def token_requests(self) -> list[tuple[float, str, str, str]]:
        return [(r.at, r.grant_type, r.fault, r.outcome) for r in self._stack.faults.requests]

    def spent_token_reuse(self) -> int:
        return int(self._stack.faults.counters.spent_token_reuse)

    def echoed_digests(self) -> list[str]:
        return [
            r.presented
            for r in self._stack.faults.requests
            if r.fault == "echo_refresh_token" and r.presented
        ]


class _RequestLog(TokenCounters):
    """The fixture AS's counters, plus each request's (arrival, grant, fault, outcome)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[list[Any]] = []

    def record_request(self, grant_type: str, fault: str, when: float) -> None:
        super().record_request(grant_type, fault, when)
        self.log.append([when, grant_type, fault, ""])

    def record_outcome(self, outcome: str) -> None:
        super().record_outcome(outcome)
        # Answers come in arrival order except for held (hang) requests, which are all alike.
        entry = next((e for e in self.log if not e[3]), None)
        if entry is not None:
            entry[3] = outcome


class _FixtureBackend:
    """Our own fixture AS and MCP server: built-in faults, switched at the predicted time.

    Its ``hang`` releases held requests with a 503 on restore, so a client never waits out
    a hung attempt there: its hang figures are kinder than the oidc backend's.
    """

    def __init__(self, auth: Any, mcp: Any) -> None:
        self._auth = auth
        self._log = _RequestLog()
        auth.counters = self._log
        self.mcp_url: str = mcp.url
        self._since: float | None = None

    async def switch(self, mode: str) -> None:
        await self._auth.set_fault(mode, retry_after=5)
        self._since = None if mode == "ok" else _now()

    async def arm(self, mode: str) -> None:
        raise NotImplementedError("the fixture AS cannot arm a fault on a request: switch it at a time")

    def fault_since(self) -> float | None:
        return self._since

    def token_requests(self) -> list[tuple[float, str, str, str]]:
        return [(e[0], e[1], e[2], e[3]) for e in self._log.log]

    def spent_token_reuse(self) -> int:
        return int(self._log.spent_token_reuse)

    def echoed_digests(self) -> list[str]:
        return []


@contextlib.asynccontextmanager
async def _backend(spec: OutageSpec, work: Path) -> AsyncIterator[_Backend]:
    if spec.backend == "oidc":
        from tests.thirdparty.oidc import OidcStack

        async with OidcStack(access_token_ttl=spec.access_ttl, workdir=work) as stack:
            yield _OidcBackend(stack)
    else:
        from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer

        async with (
            FixtureAuthServer(access_token_lifetime=spec.access_ttl) as auth,
            FixtureMCPServer(auth) as mcp,
        ):
            yield _FixtureBackend(auth, mcp)


# -- the CLI and the client ---------------------------------------------------------------------


def _browser(work: Path) -> Path:
    """A ``$BROWSER`` that follows the login like a user who is signed in and approves:
    redirects followed with a cookie jar (oidc-provider's interaction needs its cookies)."""
    script = work / "browser.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, httpx\n"
        "with httpx.Client(follow_redirects=True, timeout=20, trust_env=False) as c:\n"
        "    c.get(sys.argv[1])\n"
    )
    script.chmod(0o700)
    return script


def cli_env(home: Path, work: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKEEPER_", "TOOLHIVE_", "BROWSER"))}
    env.update(
        {
            "MCPKEEPER_HOME": str(home),
            "MCPKEEPER_SECRET_BACKEND": "file",
            "BROWSER": str(_browser(work)),
            "COLUMNS": "200",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _free_port() -> int:
    from mcpkeeper.net import free_port

    return free_port()


class _Workload:
    """mcpkeeper serving the remote in one of the three modes, and a client session to it."""

    def __init__(self, spec: OutageSpec, url: str, home: Path, work: Path) -> None:
        self.spec = spec
        self.url = url
        self.home = home
        self.work = work
        self.env = cli_env(home, work, spec.env)
        self.proxy: subprocess.Popen[bytes] | None = None
        self.local_url: str | None = None
        self.outputs: dict[str, str] = {}
        self._errlogs: list[TextIO] = []
        self._stopped = False

    async def start(self) -> None:
        if self.spec.mode == "port":
            port = _free_port()
            out = open(self.work / "proxy.out", "wb")  # noqa: SIM115 - closed in stop
            self.proxy = subprocess.Popen(
                [*_CLI, "proxy", self.url, "--name", NAME, "--port", str(port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            out.close()
            self.local_url = f"http://127.0.0.1:{port}/mcp"
            await _until(
                lambda: (read_status(self.home) or ("", ""))[0] == "running", _LOGIN_TIMEOUT, "proxy up"
            )
        elif self.spec.mode == "connect":
            done = await asyncio.to_thread(
                run_cli, self.env, "run", self.url, "--name", NAME, "-o", "json", timeout=_LOGIN_TIMEOUT
            )
            self.outputs["run.stdout"], self.outputs["run.stderr"] = done.stdout, done.stderr
            if done.returncode != 0:
                raise RuntimeError(f"mcpkeeper run failed ({done.returncode}): {done.stderr[-2000:]}")
            self.local_url = json.loads(done.stdout)["workload"]["url"]
            # One call through the aggregated endpoint while all is well, so it lists the
            # workload's tools later (a leak check reads its reply to a failing call).
            self.outputs["vMCP call before the fault"] = await _vmcp_call(self.home)

    def client(self) -> Client:
        """A new session of the official client (stdio ones spawn the CLI command)."""
        if self.spec.mode == "port":
            assert self.local_url is not None
            return Client(self.local_url, read_timeout_seconds=self.spec.call_timeout)
        if self.spec.mode == "stdio":
            args = ["-m", "mcpkeeper", "proxy", self.url, "--name", NAME, "--stdio"]
        else:
            args = ["-m", "mcpkeeper", "connect", NAME]
        errlog = open(self.work / f"client-{len(self._errlogs)}.err", "w")  # noqa: SIM115 - closed in stop
        self._errlogs.append(errlog)
        params = StdioServerParameters(command=sys.executable, args=args, env=self.env)
        return Client(stdio_client(params, errlog=errlog), read_timeout_seconds=self.spec.call_timeout)

    async def stop(self) -> None:
        """Stop what :meth:`start` started (once; later calls do nothing)."""
        if self._stopped:
            return
        self._stopped = True
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.proxy.wait, 10)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
        if self.spec.mode == "connect":
            await asyncio.to_thread(run_cli, self.env, "shutdown", timeout=20)
            await asyncio.to_thread(_stop_daemon, self.home)
        for errlog in self._errlogs:
            errlog.close()


def _stop_daemon(home: Path) -> None:
    from mcpkeeper.api.paths import pid_path
    from mcpkeeper.cli.foreground import pid_alive

    try:
        pid = int(pid_path(home).read_text().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class _Caller:
    """Calls ``echo`` once a second (never two at once) and records every outcome."""

    def __init__(self, workload: _Workload, observed: Observed) -> None:
        self._workload = workload
        self._observed = observed
        self._stop = asyncio.Event()
        self.sessions = 0
        self.session_errors: list[str] = []

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        count = 0
        while not self._stop.is_set():
            try:
                async with self._workload.client() as client:
                    self.sessions += 1
                    while not self._stop.is_set():
                        started = _now()
                        count += 1
                        broken = await self._one(client, count, started)
                        if broken:
                            break
                        await self._pause(started)
            except Exception as exc:  # the session itself failed (open or close)
                self.session_errors.append(_brief(exc))
                await self._pause(_now())
            if self.sessions > 200:
                raise RuntimeError("more than 200 client sessions: the session keeps breaking")

    async def _one(self, client: Client, count: int, started: float) -> bool:
        """One call; True when the session is unusable afterwards."""
        try:
            result = await client.call_tool("echo", {"text": f"call {count}"})
        except MCPError as exc:
            self._failed(started, _brief(exc))
            return False
        except Exception as exc:
            self._failed(started, _brief(exc))
            return True
        if result.is_error or result.structured_content != {"result": f"call {count}"}:
            text = " ".join(getattr(c, "text", "") for c in result.content)
            self._failed(started, f"tool error: {text[:500]}")
            return False
        self._observed.calls.append(Call(started, _now(), True))
        return False

    def _failed(self, started: float, error: str) -> None:
        status = read_status(self._workload.home)
        self._observed.calls.append(
            Call(started, _now(), False, error, None if status is None else status[0])
        )

    async def _pause(self, started: float) -> None:
        delay = max(0.0, started + _CALL_EVERY - _now())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)


def _brief(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, BaseExceptionGroup):
        text += " [" + "; ".join(_brief(e) for e in exc.exceptions[:3]) + "]"
    return text.replace("\n", " ")[:500]


async def _sample(home: Path, observed: Observed, stop: asyncio.Event) -> None:
    last: tuple[str, str] | None = None
    while not stop.is_set():
        status = read_status(home)
        observed.samples += 1
        if status is not None and status != last:
            observed.statuses.append((_now(), status[0], status[1][:300]))
            last = status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _SAMPLE_EVERY)


# -- the scenario ------------------------------------------------------------------------------


async def run_outage(spec: OutageSpec, work: Path) -> dict[str, Any]:
    """Run one scenario in ``work`` (a fresh directory) and return its observations and figures."""
    observed = Observed()
    home = work / "home"
    if spec.fault == "disk_full":
        _mount_tmpfs(home)
    home.mkdir(exist_ok=True)
    error: str | None = None
    try:
        async with _backend(spec, work) as backend:
            workload = _Workload(spec, backend.mcp_url, home, work)
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
        error = f"{_brief(exc)}\n{traceback.format_exc()[-3000:]}"
    finally:
        if spec.fault == "disk_full":
            _unmount_tmpfs(home)
    return {"spec": asdict(spec), "error": error, **summarise(observed), "raw": _raw(observed)}


async def _drive(
    spec: OutageSpec, backend: _Backend, workload: _Workload, observed: Observed, work: Path
) -> str | None:
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(_sample(workload.home, observed, stop_sampling))
    caller = _Caller(workload, observed)
    calling = asyncio.create_task(caller.run())
    try:
        await _until(lambda: any(c.ok for c in observed.calls), _LOGIN_TIMEOUT, "the first good call")
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
                observed.notes.setdefault("task_errors", []).append(_brief(exc))
        observed.notes["client_sessions"] = caller.sessions
        observed.notes["session_errors"] = caller.session_errors[:20]
    return None


def _ok_refreshes(backend: _Backend, since: float = 0.0) -> list[float]:
    return [
        at
        for at, grant, _, outcome in backend.token_requests()
        if grant == "refresh_token" and outcome == "ok" and at >= since
    ]


async def _smoke(spec: OutageSpec, backend: _Backend, observed: Observed) -> None:
    """``rotations`` refreshes while the client calls, and a call on the last token."""
    since = observed.calls[0].start
    await _until(
        lambda: len(_ok_refreshes(backend, since=since)) >= spec.rotations,
        spec.access_ttl * (spec.rotations + 2) + 30,
        f"{spec.rotations} rotations",
    )
    last = _ok_refreshes(backend)[-1]
    await _until(lambda: any(c.start > last for c in observed.calls), 10, "a call on the last rotated token")


async def _outage(
    spec: OutageSpec, backend: _Backend, workload: _Workload, observed: Observed, work: Path
) -> None:
    fault = "ok" if spec.fault == "disk_full" else spec.fault
    timed = spec.fault == "disk_full" or fault in _TIMED_FAULTS or isinstance(backend, _FixtureBackend)
    # Good rotations first: they prove the path, and (for a fault switched at a time) the
    # interval between two of them predicts when the next refresh falls due.
    needed = 2 if timed else 1
    await _until(
        lambda: len(_ok_refreshes(backend)) >= needed,
        spec.access_ttl * (needed + 2) + 60,
        "the first rotations",
    )
    oks = _ok_refreshes(backend)
    period = oks[-1] - oks[-2] if len(oks) >= 2 else None
    observed.notes["rotation_period"] = None if period is None else round(period, 3)
    if spec.fault == "disk_full":
        assert period is not None
        await _fill_disk_at_next_refresh(spec, backend, workload, observed, oks[-1], period)
        return
    if timed:
        assert period is not None
        await asyncio.sleep(max(0.0, oks[-1] + period - _TIMED_LEAD - _now()))
        await backend.switch(fault)
        if _ok_refreshes(backend, since=oks[-1] + 0.001):
            raise RuntimeError("the refresh came before the timed fault began: the prediction missed")
    else:
        await backend.arm(fault)
        await _until(lambda: backend.fault_since() is not None, spec.access_ttl * 3 + 60, "the armed fault")
    since = backend.fault_since()
    assert since is not None
    observed.fault_on = since
    if spec.fault == "invalid_grant":
        await _relogin(spec, backend, workload, observed)
        return
    if spec.fault == "echo_refresh_token":
        await _collect_leak_outputs(spec, backend, workload, observed, work)
        return
    await asyncio.sleep(max(0.0, since + spec.outage - _now()))
    await backend.switch("ok")
    observed.restore_at = _now()
    await _watch_recovery(spec, observed)
    if spec.wait_refresh:
        restored = observed.restore_at
        with contextlib.suppress(TimeoutError):
            await _until(
                lambda: bool(_ok_refreshes(backend, since=restored)),
                max(0.0, restored + spec.after_restore - _now()),
                "a refresh after the restore",
            )


async def _watch_recovery(spec: OutageSpec, observed: Observed) -> None:
    restore = observed.restore_at
    assert restore is not None

    def first_good() -> float | None:
        return next((c.end for c in observed.calls if c.ok and c.end >= restore), None)

    with contextlib.suppress(TimeoutError):
        await _until(lambda: first_good() is not None, spec.after_restore, "the first good call")
    good = first_good()
    if good is not None:
        await asyncio.sleep(max(0.0, good + spec.settle - _now()))


async def _relogin(spec: OutageSpec, backend: _Backend, workload: _Workload, observed: Observed) -> None:
    """invalid_grant: the workload must say ``unauthenticated``; ``login NAME`` brings it back."""
    with contextlib.suppress(TimeoutError):
        await _until(
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
    done = await asyncio.to_thread(run_cli, workload.env, "login", NAME, timeout=_LOGIN_TIMEOUT)
    observed.restore_at = _now()
    observed.notes["relogin"] = {"returncode": done.returncode, "stderr": done.stderr[-1500:]}
    workload.outputs["login.stderr"] = done.stderr
    await _watch_recovery(spec, observed)


async def _collect_leak_outputs(
    spec: OutageSpec, backend: _Backend, workload: _Workload, observed: Observed, work: Path
) -> None:
    """Everything a user or a client sees after the token endpoint echoed the refresh token."""
    with contextlib.suppress(TimeoutError):
        await _until(
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
        done = await asyncio.to_thread(run_cli, workload.env, *args)
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
    workload: _Workload, outputs: dict[str, str], work: Path, observed: Observed, backend: _Backend
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


async def _api_and_vmcp(workload: _Workload) -> dict[str, str]:
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
    out["vMCP call"] = await _vmcp_call(workload.home)
    return out


async def _vmcp_call(home: Path) -> str:
    """The aggregated endpoint's reply to ``NAME__echo`` (or the error it raised)."""
    from mcpkeeper.api.paths import run_dir

    try:
        vmcp = json.loads((run_dir(home) / "vmcp.json").read_text())
        async with Client(str(vmcp["url"]), read_timeout_seconds=15) as client:
            result = await client.call_tool(f"{NAME}__echo", {"text": "through vmcp"})
        return json.dumps(result.model_dump(mode="json"))
    except Exception as exc:
        return f"error: {_brief(exc)}"


# -- disk full ----------------------------------------------------------------------------------

_TMPFS_SIZE = "8m"


def _mount_tmpfs(home: Path) -> None:
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


def _unmount_tmpfs(home: Path) -> None:
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


async def _fill_disk_at_next_refresh(
    spec: OutageSpec, backend: _Backend, workload: _Workload, observed: Observed, last: float, period: float
) -> None:
    """Fill the disk just before the next refresh is due, keep it full, give the space back."""
    await asyncio.sleep(max(0.0, last + period - _TIMED_LEAD - _now()))
    filler = await asyncio.to_thread(_fill, workload.home)
    observed.fault_on = _now()
    if _ok_refreshes(backend, since=last + 0.001):
        raise RuntimeError("the refresh came before the disk was full: the prediction missed")
    before = len(_ok_refreshes(backend))
    with contextlib.suppress(TimeoutError):
        await _until(
            lambda: len(_ok_refreshes(backend)) > before, spec.access_ttl + 10, "a rotation on a full disk"
        )
    observed.notes["rotated_while_full"] = len(_ok_refreshes(backend)) > before
    await asyncio.sleep(max(0.0, observed.fault_on + spec.full_for - _now()))
    filler.unlink()
    observed.restore_at = _now()
    # Two more rotation periods: the kept token set must be saved and keep rotating.
    await asyncio.sleep(max(2 * period, 8.0))
    await _watch_recovery(spec, observed)
    observed.notes["status_after_space_returned"] = read_status(workload.home)
    observed.notes["stored_refresh_token_accepted"] = await _stored_token_accepted(workload)


async def _stored_token_accepted(workload: _Workload) -> dict[str, Any]:
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


# -- figures --------------------------------------------------------------------------------------


def summarise(observed: Observed) -> dict[str, Any]:
    """The figures issue 7 sets targets for, from the observations (times in seconds)."""
    t0 = observed.fault_on
    calls = observed.calls
    failed = [c for c in calls if not c.ok]
    out: dict[str, Any] = {
        "calls": len(calls),
        "failed_calls": len(failed),
        "spent_token_reuse": observed.spent_token_reuse,
        "token_requests_by_grant": _count(g for _, g, _, _ in observed.token_requests),
        "ok_refreshes": sum(
            1 for _, g, _, o in observed.token_requests if g == "refresh_token" and o == "ok"
        ),
        "statuses_seen": sorted({s for _, s, _ in observed.statuses}),
        "final_status": observed.statuses[-1][1] if observed.statuses else None,
        "running_while_refused": sum(1 for c in failed if c.status_then == "running"),
        "notes": observed.notes,
    }
    if t0 is None:
        return out
    before = [c for c in calls if c.end < t0]
    out["failed_before_fault"] = sum(1 for c in before if not c.ok)
    first_refused = min((c.end for c in failed if c.end >= t0), default=None)
    out["first_refused_after_fault"] = _rel(first_refused, t0)
    retrying = next((t for t, s, _ in observed.statuses if s == "auth_retrying" and t >= t0), None)
    out["auth_retrying_after_fault"] = _rel(retrying, t0)
    non_running = next((t for t, s, _ in observed.statuses if s != "running" and t >= t0), None)
    out["status_left_running_after_fault"] = _rel(non_running, t0)
    if first_refused is not None:
        out["auth_retrying_delay"] = None if retrying is None else round(retrying - first_refused, 3)
        out["not_running_delay"] = None if non_running is None else round(non_running - first_refused, 3)
    restore = observed.restore_at
    if restore is None:
        return out
    out["outage_s"] = round(restore - t0, 3)
    out["failed_during_outage"] = sum(1 for c in failed if t0 <= c.end < restore)
    first_good = next((c.end for c in calls if c.ok and c.end >= restore), None)
    out["first_good_after_restore"] = _rel(first_good, restore)
    if first_good is not None:
        out["refused_after_first_good"] = sum(1 for c in failed if c.start >= first_good)
        out["calls_after_first_good"] = sum(1 for c in calls if c.start >= first_good)
    out["failed_after_restore_before_good"] = sum(
        1 for c in failed if c.end >= restore and (first_good is None or c.end < first_good)
    )
    during = [r for r in observed.token_requests if t0 <= r[0] < restore]
    out["token_requests_during_outage"] = len(during)
    out["token_requests_per_hour_of_outage"] = round(len(during) * 3600 / max(restore - t0, 1e-6), 1)
    refreshed = next(
        (
            at
            for at, g, _, o in observed.token_requests
            if g == "refresh_token" and o == "ok" and at >= restore
        ),
        None,
    )
    out["refreshed_after_restore"] = _rel(refreshed, restore)
    return out


def _rel(t: float | None, origin: float) -> float | None:
    return None if t is None else round(t - origin, 3)


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _raw(observed: Observed) -> dict[str, Any]:
    t0 = observed.fault_on or (observed.calls[0].start if observed.calls else _now())
    return {
        "origin": t0,
        "calls": [
            [round(c.start - t0, 3), round(c.end - t0, 3), c.ok, c.error[:300], c.status_then]
            for c in observed.calls
        ],
        "statuses": [[round(t - t0, 3), s, r] for t, s, r in observed.statuses],
        "samples": observed.samples,
        "token_requests": [[round(at - t0, 3), g, f, o] for at, g, f, o in observed.token_requests],
        "restore_at": _rel(observed.restore_at, t0),
    }


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
