"""A field marked `graphql_not_compilable` sends every operation selecting it to graphql-core, answering the same."""

from types import MappingProxyType

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField

from schema.compiled.extension import COMPILED, GRAPHQL_CORE
from schema.compiled.plan import NOT_COMPILABLE
from schema.products.types import Review
from tests.auth import ANONYMOUS
from tests.compiled.support import Case, Catalog, answer, both_paths, served


def _mark(monkeypatch: pytest.MonkeyPatch, field: StrawberryField) -> None:
    """Declare a field as `strawberry.field(metadata={NOT_COMPILABLE: True})` would."""
    monkeypatch.setattr(field, "metadata", MappingProxyType({**field.metadata, NOT_COMPILABLE: True}))


async def test_an_operation_selecting_a_marked_field_runs_through_graphql_core(
    app: FastAPI, client: AsyncClient, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = get_object_definition(Review, strict=True).get_field("body")
    assert body is not None
    _mark(monkeypatch, body)
    # Documents no earlier test compiled: their plans are made with the mark in place.
    marked = Case("marked", "query Marked { products(first: 3) { nodes { name reviews { nodes { body } } } } }")
    unmarked = Case("unmarked", "query Unmarked { products(first: 3) { nodes { name reviews { nodes { rating } } } } }")

    reference, compiled, served_compiled = await both_paths(app, client, ANONYMOUS, marked)
    assert compiled == reference
    assert not served_compiled
    assert b'"body"' in compiled[1]

    _, _, served_compiled = await both_paths(app, client, ANONYMOUS, unmarked)
    assert served_compiled

    # The verdict is remembered per document: asked again, the marked operation goes to graphql-core again.
    before = served(GRAPHQL_CORE), served(COMPILED)
    await answer(client, ANONYMOUS, marked)
    assert (served(GRAPHQL_CORE), served(COMPILED)) == (before[0] + 1, before[1])
