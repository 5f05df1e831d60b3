"""A relation's narrower resolver serves the selections that read little below it, and only those.

A product's reviews selected for their cards (rating, body, author's name: the benchmark's
TopProducts) are loaded as `ReviewCard`s, without the title or the author's e-mail, roles and
timestamps; any selection reading more keeps the whole rows. Both answer as graphql-core does
(test_differential.py holds the cases side by side); here: which resolver the plan takes, what
the statement selects, and that a card's object has nothing a wider selection would read.
"""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from graphql import parse
from graphql.execution.executor import Executor
from httpx import AsyncClient

from bench.operations import top_products_document
from domains.products.models import ReviewCard
from schema import build_schema
from schema.compiled.extension import _bindings
from schema.compiled.plan import OBJECT, FieldPlan, PlanCache, Selection
from schema.products.types import _PRODUCT_REVIEWS, Review
from schema.users.types import User
from tests.compiled.support import Catalog
from tests.graphql import count_statements, gql

SCHEMA = build_schema()
BINDINGS = _bindings(SCHEMA)
CARDS = _PRODUCT_REVIEWS.narrower.field if _PRODUCT_REVIEWS.narrower is not None else None
UNDATED = CARDS.narrower.field if CARDS is not None and CARDS.narrower is not None else None


def _reviews_plan(document: str, field: str = "reviews") -> FieldPlan:
    """The compiled plan of the first `Product.reviews` (or other Product) field selected by the document."""
    executor: Any = Executor.build(SCHEMA._schema, parse(document), context_value=None)
    assert isinstance(executor, Executor)
    root = PlanCache(maxsize=4).root(document, executor.operation, executor, BINDINGS)
    found = _find(root, field)
    assert found is not None, document
    return found


@pytest.mark.parametrize(
    ("selection", "from_rows"),
    [
        ("edges { node { id name price { amount } category { name } reviews(first: 2) { nodes { rating } } } }", True),
        ("__typename nodes { __typename sku stock isPublished createdAt updatedAt }", True),
        ("totalCount nodes { id }", False),
        ("edges { cursor node { id } }", False),
        ("nodes { rating { average } }", False),
    ],
)
def test_the_products_page_is_read_from_its_rows_when_its_selection_is(selection: str, from_rows: bool) -> None:
    document = f"{{ products(first: 3) {{ {selection} }} }}"
    executor: Any = Executor.build(SCHEMA._schema, parse(document), context_value=None)
    root = PlanCache(maxsize=4).root(document, executor.operation, executor, BINDINGS)
    products = root.fields[0]
    assert (products.rows_of is not None) is from_rows
    assert products.completion.selection is not None
    assert products.completion.selection.from_rows is from_rows


def test_top_products_reads_its_categories_from_their_rows() -> None:
    assert _reviews_plan(top_products_document(), "category").rows is not None
    # A category's parent is not among what its rows read: the categories are made as objects.
    wider = "{ products(first: 3) { nodes { category { name parent { name } } } } }"
    assert _reviews_plan(wider, "category").rows is None


def _find(selection: Selection, name: str) -> FieldPlan | None:
    for plan in selection.fields:
        if plan.nodes[0].name.value == name and selection.type.name == "Product":
            return plan
        completion = plan.completion
        while completion.inner is not None:
            completion = completion.inner
        if completion.kind == OBJECT and completion.selection is not None:
            found = _find(completion.selection, name)
            if found is not None:
                return found
    return None


def _products(reviews: str) -> str:
    return f"{{ products(first: 3) {{ nodes {{ id reviews(first: 2) {{ {reviews} }} }} }} }}"


@pytest.mark.parametrize(
    ("document", "dated", "from_rows"),
    [
        (top_products_document(), False, True),
        (_products("nodes { rating author { name } }"), False, True),
        (_products("totalCount edges { node { __typename id body author { __typename id } } }"), False, False),
        (
            _products("nodes { ... on Review { rating } ...Stars }") + " fragment Stars on Review { author { name } }",
            False,
            True,
        ),
        (_products("__typename edges { __typename node { id } } nodes { createdAt }"), True, True),
        (_products("pageInfo { hasNextPage } nodes { rating }"), True, False),
        (
            _products("totalCount pageInfo { endCursor } edges { cursor node { __typename id createdAt body } }"),
            True,
            False,
        ),
    ],
    ids=["TopProducts", "nodes", "edges and count", "fragments", "dates", "page info", "cursors"],
)
def test_a_selection_of_cards_is_resolved_by_the_narrowest_that_covers_it(
    document: str, dated: bool, from_rows: bool
) -> None:
    assert CARDS is not None
    assert UNDATED is not None
    plan = _reviews_plan(document)
    assert plan.relation is (CARDS if dated else UNDATED)
    # Read straight from the cards when nothing selected needs the connection's objects (cursors, page, count).
    assert (plan.rows is not None) is from_rows
    assert plan.completion.selection is not None
    assert plan.completion.selection.from_rows is from_rows


@pytest.mark.parametrize(
    "reviews",
    [
        "nodes { title }",
        "nodes { rating author { email } }",
        "nodes { author { createdAt } }",
        "nodes { author { reviews(first: 1) { totalCount } } }",
        "edges { node { product { name } } }",
    ],
)
def test_a_selection_reading_more_keeps_the_whole_reviews(reviews: str) -> None:
    assert _reviews_plan(_products(reviews)).relation is _PRODUCT_REVIEWS


async def test_the_statement_of_cards_selects_only_what_they_show(
    app: FastAPI, client: AsyncClient, catalog: Catalog
) -> None:
    undated = _products("nodes { rating body author { id name } }")
    with count_statements(app) as statements:
        data = await gql(client, undated)
    assert len(statements) == 2, statements  # the products, then every product's reviews with their authors
    selected = _review_columns(statements)
    assert selected == ["id", "product_id", "user_id", "rating", "body", "name"]
    authors = [review["author"]["name"] for node in data["products"]["nodes"] for review in node["reviews"]["nodes"]]
    assert authors
    assert all(name.startswith("Author ") for name in authors)

    with count_statements(app) as statements:
        await gql(client, _products("edges { cursor node { rating } }"))
    assert _review_columns(statements) == ["id", "product_id", "user_id", "rating", "body", "created_at", "name"]

    with count_statements(app) as statements:
        await gql(client, _products("nodes { title author { name } }"))
    whole = _review_columns(statements)
    assert {"title", "created_at", "email", "roles", "is_active"} <= set(whole)


def _review_columns(statements: list[str]) -> list[str]:
    """The columns the one review window among the statements selects (its outer select list)."""
    windows = [statement for statement in statements if "page_position" in statement]
    assert len(windows) == 1, statements
    select_list = windows[0].split("FROM", 1)[0].removeprefix("SELECT").split(",")
    return [column.strip().rsplit(".", 1)[-1].strip('"') for column in select_list]


def test_a_cards_objects_have_nothing_a_wider_selection_reads() -> None:
    written = datetime(2026, 1, 2, tzinfo=UTC)
    card = ReviewCard(id=7, product_id=3, user_id=5, rating=4, body="Fine.", created_at=written, author_name="Ada")
    review = Review.from_card(card)
    assert (review.pk, review.rating, review.body, review.created_at, review.user_id) == (7, 4, "Fine.", written, 5)
    assert review.id == Review.global_id(7)
    author = review.held_author
    assert isinstance(author, User)
    assert (author.pk, author.name, author.id) == (5, "Ada", User.global_id(5))
    with pytest.raises(AttributeError):
        _ = review.title
    undated = Review.from_card(replace(card, created_at=None))
    assert undated.rating == 4
    with pytest.raises(AttributeError):
        _ = undated.created_at
    for unread in ("created_at", "private_email", "private_roles"):
        with pytest.raises(AttributeError):
            getattr(author, unread)
