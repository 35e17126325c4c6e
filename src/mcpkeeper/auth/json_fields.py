"""Reading the fields of a JSON object we stored or were sent, one rule for every ``from_dict``.

A field of the wrong type counts as absent (an older or hand-edited file, a lax server)
rather than failing the whole object; only the fields an object cannot do without raise,
with a ``ValueError`` naming what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["optional_text", "required_text", "text_list"]


def optional_text(data: Mapping[str, Any], key: str) -> str | None:
    """The non-empty string at ``key``, else None."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def required_text(data: Mapping[str, Any], key: str, missing: str) -> str:
    """The non-empty string at ``key``; ``ValueError(missing)`` when there is none."""
    value = optional_text(data, key)
    if value is None:
        raise ValueError(missing)
    return value


def text_list(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """The strings of the list at ``key`` (other items dropped); empty when it is not a list."""
    value = data.get(key)
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()
