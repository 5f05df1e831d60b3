"""An operation the compiled path gives back to graphql-core is answered as graphql-core alone answers it.

The compiled attempt loads what it reached before it gave up; graphql-core's run must not find those
values at hand, or its fields would finish in another order than they do alone, and where an error
nulls the whole `data` the errors it still reports differ (a field that failed sooner is reported).
"""

from fastapi import FastAPI
from httpx import AsyncClient

from tests.auth import Account
from tests.compiled.support import Case, Catalog, both_paths

# `nodes` fails (a malformed id) and nulls the whole `data`; `me.reviews` fails on its cursor after
# `me` is loaded. Alone, graphql-core nulls `data` before `me` has loaded, and reports `nodes` only.
NULLED = Case(
    "errors after data is nulled",
    """{ nodes(ids: ["x"]) { id } me { reviews(first: 0, after: "") { totalCount } } }""",
)


async def test_a_given_back_operation_finds_nothing_the_compiled_attempt_loaded(
    app: FastAPI, client: AsyncClient, catalog: Catalog, staff: Account
) -> None:
    for _ in range(3):
        reference, compiled, served_compiled = await both_paths(app, client, staff, NULLED)
        assert not served_compiled
        assert compiled == reference
