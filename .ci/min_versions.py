"""Print pip constraints pinning every runtime dependency to its declared lower bound.

``make test-min`` installs the project with these into a fresh venv and runs tests there:
a lower bound in pyproject.toml is a claim ("works from this version on") that only a run
at that version checks. Environment markers are kept; a dependency without a ``>=`` bound
is left to pip.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def constraints(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = []
    for requirement in project["dependencies"]:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        name, _extras, specifiers, marker = match.groups()
        lower = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if lower:
            lines.append(f"{name}=={lower[0]}{' ' + marker if marker else ''}")
    return lines


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(constraints(path)))
