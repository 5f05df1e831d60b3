"""GRAPHQL_COMPILED switches the compiled path off: every operation then runs through graphql-core."""

import pytest

from api.settings import Settings


def test_compiled_path_is_on_by_default() -> None:
    assert Settings(_env_file=None).graphql_compiled is True


def test_graphql_compiled_false_is_the_kill_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHQL_COMPILED", "false")
    assert Settings(_env_file=None).graphql_compiled is False
