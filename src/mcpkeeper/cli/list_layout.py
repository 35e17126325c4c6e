"""The ``list`` table laid out for a terminal width: shortened in the middle, never cut silently.

A URL cut at its end looks like a valid, different URL (``https://mcp.example.com/m``);
cut in the middle it cannot be mistaken (``https://mcp.exa…com/mcp``): the scheme and
host start, and the path end, stay readable. Columns shrink in the order that loses the
least (the remote URL first, then the local one, then the name) down to a floor, and
the reason gets a line of its own under its row, where it has the whole width; when
even that is too short, it ends with ``…`` and says where to read it all.

Pure functions (text in, lines out) so that the layout is tested at 80, 100 and 120 columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Cell", "ListRow", "middle_ellipsis", "shorten_url", "table_lines"]

_GAP = "  "
_REASON_INDENT = "  "
_ELLIPSIS = "…"
_HEADERS = ("NAME", "STATUS", "REMOTE", "LOCAL URL", "SINCE")
#: How narrow a column may get (a local URL keeps its port); the others keep their width.
_FLOORS = {0: 10, 2: 14, 3: len("http://127.0.0.1:65535…")}
_URL_SHRINK = (2, 3)
_NAME_SHRINK = (0,)
_URL_COLUMNS = frozenset(_URL_SHRINK)

#: One piece of a line: text and its style (None: plain).
Cell = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class ListRow:
    """The texts of one workload's row, already made safe to print."""

    name: str
    status: str
    status_style: str
    remote: str
    local_url: str
    since: str
    reason: str


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, the cut marked by ``…`` in the middle."""
    if len(text) <= width:
        return text
    if width <= 1:
        return _ELLIPSIS[:width]
    keep = width - 1
    head = (keep + 1) // 2
    return text[:head] + _ELLIPSIS + text[len(text) - (keep - head) :]


def shorten_url(url: str, width: int) -> str:
    """``url`` in at most ``width`` characters: its origin kept whole when it fits, the cut
    (``…``) between the origin and the end of the path, else in the middle of the whole."""
    if len(url) <= width:
        return url
    scheme, sep, rest = url.partition("://")
    origin_end = len(scheme) + len(sep) + (rest.find("/") if "/" in rest else len(rest))
    if not sep or origin_end + 1 > width:
        return middle_ellipsis(url, width)
    tail = width - origin_end - 1
    return url[:origin_end] + _ELLIPSIS + (url[len(url) - tail :] if tail else "")


def table_lines(rows: Sequence[ListRow], width: int | None) -> list[list[Cell]]:
    """The header, then each row and its reason line, fitted to ``width`` columns (None: no limit)."""
    cells = [[row.name, row.status, row.remote, row.local_url, row.since] for row in rows]
    widths = [max([len(header), *(len(c[i]) for c in cells)]) for i, header in enumerate(_HEADERS)]
    if width is not None:
        widths = _fitted(widths, width)
    lines: list[list[Cell]] = [_line(list(_HEADERS), widths, ["bold"] * len(_HEADERS))]
    for row, texts in zip(rows, cells, strict=True):
        lines.append(_line(texts, widths, [None, row.status_style, None, None, None]))
        if row.reason:
            lines.append([(_REASON_INDENT + _reason(row, width), "dim")])
    return lines


def _fitted(natural: list[int], width: int) -> list[int]:
    """Column widths that fit ``width`` if the floors allow (else as narrow as the floors).

    The two URL columns give up width first, the wider of the two each time (so neither is
    crushed while the other stays whole), then the name.
    """
    widths = list(natural)
    excess = sum(widths) + len(_GAP) * (len(widths) - 1) - width
    for group in (_URL_SHRINK, _NAME_SHRINK):
        while excess > 0:
            candidates = [column for column in group if widths[column] > _FLOORS[column]]
            if not candidates:
                break
            widest = max(candidates, key=lambda column: widths[column])
            widths[widest] -= 1
            excess -= 1
    return widths


def _line(texts: list[str], widths: list[int], styles: Sequence[str | None]) -> list[Cell]:
    cells: list[Cell] = []
    last = len(texts) - 1
    for index, (text, column_width) in enumerate(zip(texts, widths, strict=True)):
        shown = (shorten_url if index in _URL_COLUMNS else middle_ellipsis)(text, column_width)
        padding = "" if index == last else " " * (column_width - len(shown)) + _GAP
        cells.append((shown, styles[index]))
        if padding:
            cells.append((padding, None))
    return cells


def _reason(row: ListRow, width: int | None) -> str:
    room = None if width is None else width - len(_REASON_INDENT)
    if room is None or len(row.reason) <= room:
        return row.reason
    more = f"{_ELLIPSIS} (mcpkeeper status {row.name})"
    return row.reason[: max(0, room - len(more))].rstrip() + more
