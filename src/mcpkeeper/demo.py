"""``make demo``: the whole product, offline, against the built-in fixture servers.

Everything runs for real and the way a user runs it: the fixture authorization server
and MCP server in their own process, the ``mcpkeeper`` CLI in subprocesses, the daemon
the CLI starts, the official ``mcp`` client calling tools through the local proxy. Only
the timings are shortened (through the same ``MCPKEEPER_TOKEN_*`` variables a user would
set) so that three outages fit in about a minute. A scripted "browser" clicks "approve"
on the fixture's consent page, since there is no person at the keyboard.

It leaves nothing behind: the state lives in a temporary ``MCPKEEPER_HOME`` and the
daemon is shut down at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel

__all__ = ["main"]

console = Console(highlight=False, width=max(120, shutil.get_terminal_size((120, 40)).columns))

#: Shortened timings; every name is a documented, user-settable variable (README).
DEMO_TIMINGS = {
    "MCPKEEPER_TOKEN_REFRESH_INITIAL_RETRY_INTERVAL": "250ms",
    "MCPKEEPER_TOKEN_REFRESH_MAX_RETRY_INTERVAL": "500ms",
    "MCPKEEPER_TOKEN_REFRESH_MAX_TRIES": "2",
    "MCPKEEPER_TOKEN_REFRESH_MAX_ELAPSED_TIME": "2s",
    "MCPKEEPER_TOKEN_AUTH_RETRYING_TICK_INTERVAL": "10m",  # recovery must not wait for it
    "MCPKEEPER_TOKEN_AUTH_RETRYING_MAX_ELAPSED": "24h",
    "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "2s",
    "MCPKEEPER_TOKEN_PROBE_INTERVAL": "500ms",
    "MCPKEEPER_TOKEN_DEMAND_INITIAL_INTERVAL": "1s",
    "MCPKEEPER_TOKEN_DEMAND_MAX_INTERVAL": "4s",
    "MCPKEEPER_TOKEN_WAKE_CHECK_INTERVAL": "1s",
    "MCPKEEPER_TOKEN_REQUEST_TIMEOUT": "3s",
    "MCPKEEPER_TOKEN_EXPIRY_SKEW": "1s",
    "MCPKEEPER_TOKEN_CALLER_WAIT": "3s",
}
TOKEN_LIFETIME = 8  # seconds: short, so outages bite quickly
NAME = "demo"
_BROWSER = """#!{python}
# A headless "browser": follows the authorization URL (the fixture approves at once)
# and delivers the redirect to mcpkeeper's loopback callback, as a person's browser would.
import sys, httpx
answer = httpx.get(sys.argv[1], follow_redirects=False, timeout=10)
httpx.get(answer.headers["location"], timeout=10)
"""


class DemoError(Exception):
    pass


class _Demo:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.started = time.monotonic()
        browser = home / "browser.py"
        browser.write_text(_BROWSER.format(python=sys.executable))
        browser.chmod(0o700)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKEEPER_", "TOOLHIVE_"))}
        self.env.update(DEMO_TIMINGS)
        self.env.update(
            {
                "MCPKEEPER_HOME": str(home),
                "MCPKEEPER_SECRET_BACKEND": "file",  # never touch the user's real keyring
                "BROWSER": str(browser),
                "COLUMNS": str(console.width),
            }
        )
        self.fixture: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.local_url = ""

    # -- plumbing -----------------------------------------------------------------------
    def step(self, title: str) -> None:
        console.print()
        console.rule(f"[bold cyan]{title}[/]  [dim](t+{time.monotonic() - self.started:4.1f}s)[/]")

    def say(self, text: str) -> None:
        console.print(f"  {text}")

    def cli(self, *args: str, show: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
        if show:
            console.print(f"[bold]$ mcpkeeper {' '.join(args)}[/]")
        done = subprocess.run(  # noqa: S603 - our own interpreter and CLI, fixed arguments
            [sys.executable, "-m", "mcpkeeper", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if show else subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
        if show:
            for line in done.stdout.rstrip().splitlines():
                console.print(f"  {line}", markup=False, highlight=False)
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout or "").strip()
            raise DemoError(f"`mcpkeeper {' '.join(args)}` exited {done.returncode}: {detail}")
        return done

    def status(self) -> dict[str, Any]:
        done = self.cli("list", "--all", "-o", "json", show=False)
        for row in json.loads(done.stdout):
            if row["name"] == NAME:
                return dict(row)
        raise DemoError(f"workload {NAME!r} is not listed")

    def wait_status(self, wanted: str, *, timeout: float) -> float:
        start = time.monotonic()
        while True:
            row = self.status()
            if row["status"] == wanted:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise DemoError(f"{NAME} did not become {wanted} within {timeout:.0f}s (is {row['status']})")
            time.sleep(0.25)

    def control(self, path: str, body: dict[str, Any]) -> None:
        httpx.post(f"{self.info['control_url']}{path}", json=body, timeout=5).raise_for_status()

    # -- the story ----------------------------------------------------------------------
    def start_fixtures(self) -> None:
        self.step("1. Fixture servers: an OAuth 2.1 authorization server and a protected MCP server")
        self.fixture = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "mcpkeeper.testing",
                "serve",
                "--json",
                "--token-lifetime",
                str(TOKEN_LIFETIME),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.fixture.stdout is not None
        ready, _, _ = select.select([self.fixture.stdout], [], [], 30)
        if not ready:
            raise DemoError("the fixture servers did not start")
        self.info = json.loads(self.fixture.stdout.readline())
        self.say(f"authorization server  {self.info['issuer']}   (access tokens live {TOKEN_LIFETIME}s)")
        self.say(f"MCP server            {self.info['mcp_url']}   (tools: echo, add, slow)")

    def run_workload(self) -> None:
        self.step("2. mcpkeeper run: discovery, registration, PKCE login in the browser, daemon, proxy")
        self.cli("run", self.info["mcp_url"], "--name", NAME)
        self.local_url = str(self.status()["url"])
        self.cli("list")

    def call_tools(self, note: str) -> None:
        echoed, total = asyncio.run(_call_tools(self.local_url))
        self.say(
            f"[green]MCP client through {self.local_url}[/]: echo → {echoed!r}, add(2, 40) → {total}  {note}"
        )

    def aggregated(self) -> None:
        self.step("2b. One endpoint for every workload: the daemon's aggregated MCP server (vMCP)")
        from mcpkeeper.vmcp.runfile import read_vmcp_info

        info = read_vmcp_info(self.home)
        if info is None or info.url is None:
            raise DemoError(f"the aggregated endpoint is not served: {info.error if info else 'no record'}")
        names, echoed = asyncio.run(_call_aggregated(info.url))
        self.say(f"{info.url} lists: {', '.join(names)}")
        self.say(f"{NAME}__echo → {echoed!r}  (routed to the workload's proxy; the vMCP holds no token)")

    def outage(self, fault: str, title: str, *, how: str) -> None:
        self.step(title)
        self.control("/fault", {"mode": fault})
        self.say(f"token endpoint now answers: [yellow]{fault}[/]")
        self.wait_status("auth_retrying", timeout=60)
        self.cli("list")
        self.show_503()
        self.control("/fault", {"mode": "ok"})
        self.say("[green]the cause clears[/] (token endpoint healthy again)")
        took = self.wait_status("running", timeout=60)
        self.say(f"back to [green]running[/] {took:.1f}s after the restore: {how}")
        self.cli("list")
        self.call_tools("(same session config, no restart)")

    def show_503(self) -> None:
        response = httpx.post(
            self.local_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Accept": "application/json, text/event-stream"},
            timeout=10,
        )
        retry_after = response.headers.get("retry-after", "-")
        self.say(
            f"a client request now gets [yellow]HTTP {response.status_code}[/] "
            f"with Retry-After: {retry_after} (never a 401, which would start the client's own OAuth dance)"
        )

    def permanent_failure(self) -> None:
        self.step("5. A verdict: the authorization server revokes the grant (invalid_grant)")
        self.control("/fault", {"mode": "invalid_grant"})
        self.control("/revoke-all-access-tokens", {})
        took = self.wait_status("unauthenticated", timeout=60)
        self.say(f"[red]unauthenticated[/] {took:.1f}s later: no retry loop, the user is told what to do")
        self.cli("list")
        self.cli("status", NAME)
        self.step("6. mcpkeeper login demo: re-authenticate in place (no rm + run)")
        self.control("/fault", {"mode": "ok"})
        self.cli("login", NAME)
        self.wait_status("running", timeout=30)
        self.cli("list")
        self.call_tools("(after the new login)")

    def close(self) -> None:
        try:
            self.cli("shutdown", show=False, check=False)
        finally:
            if self.fixture is not None and self.fixture.poll() is None:
                self.fixture.terminate()
                try:
                    self.fixture.wait(10)
                except subprocess.TimeoutExpired:
                    self.fixture.kill()


async def _call_tools(url: str) -> tuple[str, Any]:
    from mcp.client import Client

    async with asyncio.timeout(20), Client(url) as client:
        echoed = await client.call_tool("echo", {"text": "hello through mcpkeeper"})
        added = await client.call_tool("add", {"a": 2, "b": 40})
    if echoed.is_error or added.is_error:
        raise DemoError("a tool call failed")
    return _result(echoed), _result(added)


async def _call_aggregated(url: str) -> tuple[list[str], Any]:
    from mcp.client import Client

    async with asyncio.timeout(20), Client(url) as client:
        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        echoed = await client.call_tool(f"{NAME}__echo", {"text": "one endpoint for all"})
    if echoed.is_error:
        raise DemoError("a tool call through the aggregated endpoint failed")
    return names, _result(echoed)


def _result(result: Any) -> Any:
    content = result.structured_content
    return content.get("result") if isinstance(content, dict) else content


def main() -> int:
    console.print(
        Panel.fit(
            "mcpkeeper demo: a workload that survives a WAF's HTML 403 and a refused connection on its\n"
            "token endpoint, recovers within seconds of each cause clearing, and stops only on the\n"
            "authorization server's verdict — then comes back with `mcpkeeper login`, in place.",
            title="make demo",
        )
    )
    home = Path(tempfile.mkdtemp(prefix="mcpkeeper-demo-"))
    demo = _Demo(home)
    try:
        demo.start_fixtures()
        demo.run_workload()
        demo.call_tools("(token injected by the proxy)")
        demo.aggregated()
        demo.outage(
            "waf_html_403",
            "3. Outage: a WAF answers the token endpoint with an HTML 403 page",
            how="the probe (a GET of the token endpoint, spending nothing) saw the WAF page give way "
            "(no 10-minute tick, no login)",
        )
        demo.outage(
            "refused",
            "4. Outage: the network drops (connection refused), then comes back",
            how="the probe saw the endpoint answer again (no request spent, no login)",
        )
        demo.permanent_failure()
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        _print_logs(home)
        return 1
    finally:
        demo.close()
    demo.step("Done")
    demo.say(
        f"every step above ran for real in {time.monotonic() - demo.started:.0f}s; nothing was left running"
    )
    shutil.rmtree(home, ignore_errors=True)
    return 0


def _print_logs(home: Path) -> None:
    for log in sorted((home / "logs").glob("*.log")):
        console.print(f"[dim]--- {log.name} (last lines)[/]")
        for line in log.read_text(errors="replace").splitlines()[-15:]:
            console.print(f"  {line}", markup=False)


if __name__ == "__main__":
    sys.exit(main())
