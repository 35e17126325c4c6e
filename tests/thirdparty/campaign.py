"""Outage scenarios run side by side, one process each, judged one by one by the tests.

Each scenario (:mod:`tests.thirdparty.outage`) spends most of its time waiting for token
lifetimes and outages to pass, so they run in parallel: a session fixture starts all of
them (a second apart, to spread the start-up work over the two cores) and each test waits
for its own result, bounded in time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.thirdparty.oidc import REPO, require_oracles

__all__ = ["Campaign"]

_STAGGER = 1.0


class Campaign:
    """``Campaign({"refused": ["--fault", "refused", ...]}, workroot)``: one process per key."""

    def __init__(self, scenarios: dict[str, list[str]], workroot: Path) -> None:
        require_oracles()
        self._workroot = workroot
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._results: dict[str, dict[str, Any]] = {}
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        for index, (key, args) in enumerate(scenarios.items()):
            if index:
                time.sleep(_STAGGER)
            work = workroot / key
            work.mkdir(parents=True)
            with open(work / "result.json", "wb") as out, open(work / "scenario.err", "wb") as err:
                self._processes[key] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.thirdparty.outage",
                        "--json",
                        "--workdir",
                        str(work),
                        *args,
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                )

    def result(self, key: str, timeout: float = 300.0) -> dict[str, Any]:
        """The scenario's figures; an AssertionError (with its log) if it could not run."""
        if key not in self._results:
            process = self._processes[key]
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                raise AssertionError(f"scenario {key} did not finish within {timeout:g}s") from None
            work = self._workroot / key
            text = (work / "result.json").read_text()
            if not text.strip():
                err = (work / "scenario.err").read_text()[-4000:]
                raise AssertionError(f"scenario {key} printed no result (exit {process.returncode}):\n{err}")
            self._results[key] = json.loads(text)
        result = self._results[key]
        if result["error"] is not None:
            raise AssertionError(f"scenario {key} failed to run: {result['error']}")
        return result

    def close(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
