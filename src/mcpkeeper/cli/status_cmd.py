"""``mcpkeeper status NAME``: one workload in depth, never a token.

The running daemon knows most (its monitor's live view: next attempt, failures); when
it is down, or the workload runs in the foreground, the same shape is assembled from
disk: the status file, its history, and the expiry times of the stored login.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcpkeeper.cli._options import WorkloadNameArg, checked_name
from mcpkeeper.cli.daemon_access import connect_running_daemon
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.cli.overview import WorkloadRow, find_row
from mcpkeeper.cli.render import format_instant, humanise_age, printable, status_style
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.workloads.info import history_json

__all__ = ["status"]

_NOT_FOUND = 404
_AUTH_FIELDS = (
    ("state", "state"),
    ("reason", "reason"),
    ("access_expires_at", "access token expires"),
    ("refresh_expires_at", "refresh token expires"),
    ("has_refresh_token", "refresh token"),
    ("last_login_at", "last login"),
    ("last_refresh_at", "last refresh"),
    ("last_attempt_at", "last attempt"),
    ("next_attempt_at", "next attempt"),
    ("retrying_since", "retrying since"),
    ("consecutive_failures", "consecutive failures"),
    ("last_failure", "last failure"),
    ("unsaved", "storage"),
)


def status(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Show a workload's status, token expiry times, refresh schedule and recent transitions."""
    home = state_home()
    row = find_row(home, checked_name(name))
    if row is None:
        raise CliError(f"no workload named {name!r} (see 'mcpkeeper list --all')", ExitCode.NOT_FOUND)
    # An unreadable config (no remote known) is reported from disk, the same with the daemon up or down.
    detail = None if row.foreground or row.remote_url is None else _from_daemon(home, name)
    if detail is None:
        detail = _from_disk(home, row)
    if output is OutputFormat.JSON:
        print_json(detail)
    else:
        _print_detail(detail)


def _from_daemon(home: Path, name: str) -> dict[str, Any] | None:
    from mcpkeeper.api.client import DaemonError

    client = connect_running_daemon(home)
    if client is None:
        return None
    with client:
        try:
            detail = client.get_workload(name)
        except DaemonError as exc:
            if exc.status == _NOT_FOUND:
                return None
            raise
    detail["source"] = "daemon"
    return detail


def _from_disk(home: Path, row: WorkloadRow) -> dict[str, Any]:
    history = StatusStore(home).history(row.name)
    return {
        **row.to_json(),
        "source": "disk",
        "auth": _stored_login_facts(home, row.name),
        "history": history_json(history),
    }


def _stored_login_facts(home: Path, name: str) -> dict[str, Any] | None:
    """Expiry facts of the stored login: times and presence only, never the token itself."""
    from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError

    store = CredentialStore.open(home)
    try:
        login = store.load(name)
    except CredentialStoreError as exc:
        return {"state": "unreadable", "reason": str(exc)}
    if login is None:
        earlier = store.secrets.quarantined(name)  # found unreadable before, by any process
        if earlier is not None:
            return {"state": "unreadable", "reason": f"{earlier}; run `mcpkeeper login {name}`"}
        return None
    token = login.token
    return {
        "state": "stored" if token is not None else "no token",
        "access_expires_at": token.expires_at if token is not None else None,
        "has_refresh_token": token is not None and token.refresh_token is not None,
        "last_login_at": login.saved_at,
        "issuer": login.issuer,
    }


def _print_detail(detail: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    now = datetime.now(UTC)
    status_text = Text(str(detail.get("status")), style=status_style(str(detail.get("status"))))
    since = humanise_age(_as_datetime(detail.get("updated_at")), now)
    console.print(Text.assemble(("Workload  ", "bold"), str(detail.get("name"))))
    console.print(Text.assemble(("Status    ", "bold"), status_text, f"  (since {since})"))
    for label, key in (
        ("Reason", "status_context"),
        ("Health", "health"),
        ("Remote", "remote_url"),
        ("Local URL", "url"),
        ("Desired", "desired_state"),
    ):
        if detail.get(key) not in (None, ""):
            console.print(Text.assemble((f"{label:<10}", "bold"), printable(detail[key])))
    if not detail.get("foreground") and detail.get("source") == "disk":
        console.print(Text("(daemon not running: figures read from disk)", style="dim"))
    auth = detail.get("auth")
    console.print(Text("Auth", style="bold"))
    if not auth:
        console.print("  no stored login (the remote needs none, or `mcpkeeper login NAME`)")
    else:
        for key, label in _AUTH_FIELDS:
            if key in auth and auth[key] not in (None, ""):
                console.print(Text(f"  {label:<22}{printable(_auth_value(key, auth[key], time.time()))}"))
    history = detail.get("history") or []
    console.print(Text(f"History (last {len(history)}, oldest first)", style="bold"))
    for entry in history:
        moment = _as_datetime(entry.get("at"))
        stamp = moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "?"
        state = str(entry.get("status"))
        console.print(
            Text.assemble(
                f"  {stamp}  ", (f"{state:<16}", status_style(state)), printable(entry.get("reason") or "")
            )
        )


def _auth_value(key: str, value: Any, now: float) -> str:
    if key == "has_refresh_token":
        return "present (refreshed automatically)" if value else "none: a new login is needed when it expires"
    if key.endswith("_at") or key == "retrying_since":
        moment = _as_datetime(value)
        return format_instant(moment.timestamp() if moment else None, now)
    return str(value)


def _as_datetime(value: Any) -> datetime | None:
    """Timestamps arrive as ISO strings (API, JSON) or epoch seconds (stored login)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None
