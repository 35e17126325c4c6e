"""mcpkeeper serving the remote in one of three ways, the official client calling it once a
second, and the status file sampled: what a scenario drives and watches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from tests.integration.cli_support import CLI, cli_env, run_cli, stop_daemon, write_browser
from tests.thirdparty.outage_model import (
    CALL_EVERY,
    LOGIN_TIMEOUT,
    NAME,
    SAMPLE_EVERY,
    Call,
    Observed,
    OutageSpec,
    now,
    read_status,
)

# -- the CLI and the client ---------------------------------------------------------------------


def _free_port() -> int:
    from mcpkeeper.net import free_port

    return free_port()


class Workload:
    """mcpkeeper serving the remote in one of the three modes, and a client session to it."""

    def __init__(self, spec: OutageSpec, url: str, home: Path, work: Path) -> None:
        self.spec = spec
        self.url = url
        self.home = home
        self.work = work
        browser = write_browser(work)  # follows the redirects with a cookie jar, as oidc-provider needs
        self.env = cli_env(home, {"BROWSER": str(browser), "PYTHONUNBUFFERED": "1", **spec.env})
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
                [*CLI, "proxy", self.url, "--name", NAME, "--port", str(port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            out.close()
            self.local_url = f"http://127.0.0.1:{port}/mcp"
            await until(
                lambda: (read_status(self.home) or ("", ""))[0] == "running", LOGIN_TIMEOUT, "proxy up"
            )
        elif self.spec.mode == "connect":
            done = await asyncio.to_thread(
                run_cli,
                self.home,
                "run",
                self.url,
                "--name",
                NAME,
                "-o",
                "json",
                env=self.env,
                timeout=LOGIN_TIMEOUT,
            )
            self.outputs["run.stdout"], self.outputs["run.stderr"] = done.stdout, done.stderr
            if done.returncode != 0:
                raise RuntimeError(f"mcpkeeper run failed ({done.returncode}): {done.stderr[-2000:]}")
            self.local_url = json.loads(done.stdout)["workload"]["url"]
            # One call through the aggregated endpoint while all is well, so it lists the
            # workload's tools later (a leak check reads its reply to a failing call).
            self.outputs["vMCP call before the fault"] = await vmcp_call(self.home)

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
            await asyncio.to_thread(stop_daemon, self.home)
        for errlog in self._errlogs:
            errlog.close()


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class Caller:
    """Calls ``echo`` once a second (never two at once) and records every outcome."""

    def __init__(self, workload: Workload, observed: Observed) -> None:
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
                        started = now()
                        count += 1
                        broken = await self._one(client, count, started)
                        if broken:
                            break
                        await self._pause(started)
            except Exception as exc:  # the session itself failed (open or close)
                self.session_errors.append(brief(exc))
                await self._pause(now())
            if self.sessions > 200:
                raise RuntimeError("more than 200 client sessions: the session keeps breaking")

    async def _one(self, client: Client, count: int, started: float) -> bool:
        """One call; True when the session is unusable afterwards."""
        try:
            result = await client.call_tool("echo", {"text": f"call {count}"})
        except MCPError as exc:
            self._failed(started, brief(exc))
            return False
        except Exception as exc:
            self._failed(started, brief(exc))
            return True
        if result.is_error or result.structured_content != {"result": f"call {count}"}:
            text = " ".join(getattr(c, "text", "") for c in result.content)
            self._failed(started, f"tool error: {text[:500]}")
            return False
        self._observed.calls.append(Call(started, now(), True))
        return False

    def _failed(self, started: float, error: str) -> None:
        status = read_status(self._workload.home)
        self._observed.calls.append(Call(started, now(), False, error, None if status is None else status[0]))

    async def _pause(self, started: float) -> None:
        delay = max(0.0, started + CALL_EVERY - now())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)


def brief(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, BaseExceptionGroup):
        text += " [" + "; ".join(brief(e) for e in exc.exceptions[:3]) + "]"
    return text.replace("\n", " ")[:500]


async def sample_statuses(home: Path, observed: Observed, stop: asyncio.Event) -> None:
    last: tuple[str, str] | None = None
    while not stop.is_set():
        status = read_status(home)
        observed.samples += 1
        if status is not None and status != last:
            observed.statuses.append((now(), status[0], status[1][:300]))
            last = status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)


async def watch_recovery(spec: OutageSpec, observed: Observed) -> None:
    restore = observed.restore_at
    assert restore is not None

    def first_good() -> float | None:
        return next((c.end for c in observed.calls if c.ok and c.end >= restore), None)

    with contextlib.suppress(TimeoutError):
        await until(lambda: first_good() is not None, spec.after_restore, "the first good call")
    good = first_good()
    if good is not None:
        await asyncio.sleep(max(0.0, good + spec.settle - now()))


async def vmcp_call(home: Path) -> str:
    """The aggregated endpoint's reply to ``NAME__echo`` (or the error it raised)."""
    from mcpkeeper.api.paths import run_dir

    try:
        vmcp = json.loads((run_dir(home) / "vmcp.json").read_text())
        async with Client(str(vmcp["url"]), read_timeout_seconds=15) as client:
            result = await client.call_tool(f"{NAME}__echo", {"text": "through vmcp"})
        return json.dumps(result.model_dump(mode="json"))
    except Exception as exc:
        return f"error: {brief(exc)}"
