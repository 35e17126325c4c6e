"""``mcpkeeper.state`` exports its names lazily (PEP 562); each must still resolve."""

from __future__ import annotations

import importlib

import pytest

import mcpkeeper.state as state


@pytest.mark.parametrize("name", state.__all__)
def test_every_exported_name_is_the_submodule_object(name: str) -> None:
    value = getattr(state, name)
    defining = importlib.import_module(f"mcpkeeper.state.{state._EXPORTS[name]}")
    assert value is getattr(defining, name)
    assert name in dir(state)


def test_exports_and_table_agree() -> None:
    assert sorted(state.__all__) == sorted(state._EXPORTS)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = state.no_such_thing  # type: ignore[attr-defined]
