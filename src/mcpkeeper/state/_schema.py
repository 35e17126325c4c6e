"""The one schema of every state file: msgspec structs, decoded with validation.

Each record (a workload config, a status, a history entry) is declared once, as a
:class:`msgspec.Struct` with its constraints in the annotations and any rule of ours in
``__post_init__`` (which msgspec runs on decode too). The stores read and write through
it, and so does ``mcpkeeper list``: msgspec imports and decodes fast enough that ``list``
needs no second, hand-written reader of the same files.

Unknown keys are ignored (a file written by a newer version still loads); times are
timezone-aware and written as ISO-8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec

__all__ = ["SchemaError", "UtcDatetime", "decode", "encode", "to_json"]

T = TypeVar("T")

#: A timezone-aware time (what every state file holds).
UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

_MAX_REASON = 120


class SchemaError(ValueError):
    """The bytes are not a valid record; the message is one short line naming the field."""


def decode(data: bytes | str, type_: type[T]) -> T:
    """``data`` (JSON) as a ``type_``; :class:`SchemaError` saying what is wrong otherwise."""
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if text.startswith("Expected `object`"):
            raise SchemaError("not a JSON object") from None
        raise SchemaError(text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…") from None
    except msgspec.DecodeError:
        raise SchemaError("not valid JSON") from None


def encode(value: Any) -> bytes:
    return msgspec.json.encode(value)


def to_json(value: Any) -> Any:
    """JSON-ready builtins (times as ISO-8601 strings)."""
    return msgspec.to_builtins(value)
