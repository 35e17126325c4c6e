"""Changing one server entry in a client's config file: plan, show, write.

A change is planned first (:class:`Edit`: the text before and after), so that
``--dry-run`` can show it as a diff and a run that changes nothing writes nothing. Writing
follows the state files' rules: the whole new file is written to a temporary file beside
it, synced and renamed over the old one, so the client never reads half a file. The
first time mcpkeeper changes a file, the original is kept beside it
(``<file>.mcpkeeper-backup``); later changes leave that backup alone. The file keeps its
permissions; a new file is created readable by the user alone (it may hold the client
token). A symlinked config (dotfiles) is written through the link, which stays.

The entry is mcpkeeper's to replace only when it already runs through mcpkeeper; a
server of the same name the user set up otherwise is left alone unless ``force``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcpkeeper.clientconfig.jsonc import JsoncError, append_to_array, loads, remove_member, set_member
from mcpkeeper.state._atomic import atomic_write_bytes

__all__ = [
    "BACKUP_SUFFIX",
    "ConfigFileError",
    "Edit",
    "home_relative",
    "is_private",
    "plan_entry",
    "plan_removal",
    "read_config",
    "servers_in",
    "write_edit",
]

BACKUP_SUFFIX = ".mcpkeeper-backup"
#: Client configs are kilobytes; Claude Code's grows with history. Anything far larger is not one.
MAX_CONFIG_BYTES = 64 * 1024 * 1024
_NEW_FILE_MODE = 0o600

#: ``kept``: a server of that name is there, but it is not mcpkeeper's (removal left it alone).
Action = Literal["add", "update", "unchanged", "remove", "absent", "kept"]


class ConfigFileError(Exception):
    """A config file cannot be read or changed safely; the message is one line and names the file."""


@dataclass(frozen=True, slots=True)
class Edit:
    """One planned change of one file: ``after`` None means nothing to write."""

    path: Path
    action: Action
    before: str | None
    after: str | None
    #: The new text holds a secret (the client token): the file is made readable by its owner alone.
    private: bool = False

    @property
    def changes(self) -> bool:
        """Whether writing it changes the file (its text, or its mode to hide a secret)."""
        return self.after is not None and (self.after != self.before or self.private)

    def diff(self, secrets: Iterable[str] = ()) -> str:
        """A unified diff of the change, with ``secrets`` masked (a dry run prints it)."""
        if not self.changes:
            return ""
        before, after = self.before or "", self.after or ""
        for secret in secrets:
            before = before.replace(secret, "<client token>")
            after = after.replace(secret, "<client token>")
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{self.path} (now)" if self.before is not None else "/dev/null",
            tofile=f"{self.path} (after)",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def read_config(path: Path) -> str | None:
    """The file's text; None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigFileError(f"{path} is over {MAX_CONFIG_BYTES // (1024 * 1024)} MB; not a client config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path} is not UTF-8 text; not touching it") from None


def servers_in(text: str | None, root: Sequence[str], path: Path) -> dict[str, Any]:
    """The server entries of a config's text (empty when there are none)."""
    if text is None:
        return {}
    try:
        current: Any = loads(text)
    except JsoncError as exc:
        raise ConfigFileError(f"{path} is not valid JSON: {exc}") from None
    for part in root:
        current = current.get(part) if isinstance(current, dict) else None
    return current if isinstance(current, dict) else {}


def plan_entry(
    path: Path,
    root: Sequence[str],
    name: str,
    entry: Mapping[str, Any],
    *,
    ours: Callable[[object], bool],
    force: bool = False,
    inputs: Sequence[Mapping[str, Any]] = (),
    secret: str | None = None,
) -> Edit:
    """The change that makes ``<root>.<name>`` equal ``entry`` (and adds ``inputs`` not there yet).

    ``secret``: a value the entry carries that others must not read (the client token).
    """
    before = read_config(path)
    existing = servers_in(before, root, path).get(name)
    if existing is not None and existing != entry and not ours(existing) and not force:
        raise ConfigFileError(
            f"{path} already has a server named {name!r} that does not run through mcpkeeper; "
            "pass --force to replace it"
        )
    text = before or ""
    try:
        if existing != entry:
            text = set_member(text, root, name, dict(entry))
        for item in inputs:
            text = _with_input(text, item)
    except JsoncError as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    private = secret is not None and secret in text
    if text == (before or "") and not (private and not is_private(path)):
        return Edit(path, "unchanged", before, None)
    return Edit(path, "add" if existing is None else "update", before, text, private)


def plan_removal(
    path: Path,
    root: Sequence[str],
    name: str,
    *,
    ours: Callable[[object], bool],
    force: bool = False,
    strict: bool = True,
) -> Edit:
    """The change that removes ``<root>.<name>`` if it is mcpkeeper's (or ``force``).

    A server of that name that is not mcpkeeper's is an error when ``strict`` (the user
    named this client), else it is left alone (``kept``).
    """
    before = read_config(path)
    existing = servers_in(before, root, path).get(name)
    if existing is None or before is None:
        return Edit(path, "absent", before, None)
    if not ours(existing) and not force:
        if not strict:
            return Edit(path, "kept", before, None)
        raise ConfigFileError(
            f"the server {name!r} in {path} does not run through mcpkeeper; pass --force to remove it anyway"
        )
    try:
        return Edit(path, "remove", before, remove_member(before, root, name))
    except JsoncError as exc:
        raise ConfigFileError(f"{path}: {exc}") from None


def write_edit(edit: Edit) -> Path | None:
    """Write a planned change; returns the backup made now (first change of an existing file)."""
    if edit.after is None or not (edit.changes or edit.private):
        return None
    target = edit.path.resolve() if edit.path.is_symlink() else edit.path
    if read_config(target) != edit.before:
        raise ConfigFileError(f"{edit.path} changed while mcpkeeper was editing it; run the command again")
    backup = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = _NEW_FILE_MODE
        if edit.before is not None:
            mode = target.stat().st_mode & (0o700 if edit.private else 0o777)
            backup = target.with_name(target.name + BACKUP_SUFFIX)
            if backup.exists():
                backup = None
            else:
                atomic_write_bytes(backup, edit.before.encode("utf-8"), mode=_NEW_FILE_MODE)
        atomic_write_bytes(target, edit.after.encode("utf-8"), mode=mode)
    except OSError as exc:
        raise ConfigFileError(f"cannot write {edit.path}: {exc.strerror or exc}") from None
    return backup


def _with_input(text: str, item: Mapping[str, Any]) -> str:
    """``text`` with the VS Code input ``item`` in ``inputs``, unless one with its id is there."""
    inputs = loads(text).get("inputs") if text.strip() else None
    if isinstance(inputs, list) and any(
        isinstance(i, dict) and i.get("id") == item.get("id") for i in inputs
    ):
        return text
    return append_to_array(text, [], "inputs", dict(item))


def is_private(path: Path) -> bool:
    """Whether only the owner may read ``path`` (a config holding the client token should be)."""
    try:
        return path.stat().st_mode & 0o077 == 0
    except OSError:
        return True


def home_relative(path: Path, home: Path) -> str:
    """``path`` with the home directory shown as ``~`` (shorter, and the same on every machine)."""
    try:
        return str(Path("~") / path.relative_to(home))
    except ValueError:
        return str(path)
