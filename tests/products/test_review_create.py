import asyncio
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import create_engine, create_sessionmaker
from api.settings import Settings
from domains.common.exceptions import DomainError
from domains.common.ids import encode_global_id
from domains.common.principal import Principal, Role
from domains.products import models as products_models
from domains.products import service as products_service
from tests import factories
from tests.auth import Account, Caller, bearer, cast
from tests.graphql import error_codes, gql, post

REVIEW_CREATE = """
mutation ($input: ReviewCreateInput!) {
  reviewCreate(input: $input) {
    review { id rating title body author { name } product { rating { average count } } }
    userErrors { field code }
  }
}
"""
# One request: the product's rating in each payload must count the writes before it.
CREATE_THEN_DELETE = """
mutation ($product: ID!, $review: ID!) {
  created: reviewCreate(input: {productId: $product, rating: 1}) { review { product { rating { average count } } } }
  deleted: reviewDelete(input: {reviewId: $review}) { product { rating { average count } } }
}
"""


def _id(product: products_models.Product) -> str:
    return encode_global_id("Product", product.id)


async def _review(client: AsyncClient, caller: Caller, product: products_models.Product, **fields: Any) -> Any:
    variables = {"input": {"productId": _id(product), "rating": 4} | fields}
    return (await gql(client, REVIEW_CREATE, variables, caller.headers))["reviewCreate"]


async def test_review_create_adds_a_review_that_the_product_rating_counts_at_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given: a product with one 2-star review
    product = await factories.create_product(db_session)
    await factories.create_review(db_session, product=product, author=await factories.create_user(db_session), rating=2)
    await db_session.commit()

    # when
    payload = await _review(client, customer, product, title="  Lovely ", body="Would buy again.")

    # then
    review = payload["review"]
    assert payload["userErrors"] == []
    assert {key: value for key, value in review.items() if key != "id"} == {
        "rating": 4,
        "title": "Lovely",
        "body": "Would buy again.",
        "author": {"name": "Ann"},
        "product": {"rating": {"average": 3.0, "count": 2}},
    }
    assert await factories.recorded_events(db_session) == [
        ("ReviewCreated", {"reviewId": review["id"], "productId": _id(product)})
    ]


async def test_review_create_payload_reflects_writes_made_earlier_in_the_request(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a product with a 5-star review by a customer; staff review it and delete the customer's review
    product = await factories.create_product(db_session)
    review = await factories.create_review(db_session, product=product, author=await factories.create_user(db_session))
    staff = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()
    variables = {"product": _id(product), "review": encode_global_id("Review", review.id)}

    # when
    data = await gql(client, CREATE_THEN_DELETE, variables, bearer(app, staff).headers)

    # then
    assert data["created"]["review"]["product"]["rating"] == {"average": 3.0, "count": 2}
    assert data["deleted"]["product"]["rating"] == {"average": 1.0, "count": 1}


async def test_review_create_refuses_a_second_review_of_the_same_product(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given
    product = await factories.create_product(db_session)
    await db_session.commit()
    await _review(client, customer, product)

    # when
    payload = await _review(client, customer, product, rating=1)

    # then
    assert payload == {"review": None, "userErrors": [{"field": ["input", "productId"], "code": "ALREADY_EXISTS"}]}


async def test_review_create_answers_not_found_for_unknown_and_unpublished_products(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given
    draft = await factories.create_product(db_session, published=False)
    await db_session.commit()
    unknown = {"productId": encode_global_id("Product", draft.id + 999), "rating": 5}

    # when
    of_draft = await _review(client, customer, draft)
    of_unknown = (await gql(client, REVIEW_CREATE, {"input": unknown}, customer.headers))["reviewCreate"]

    # then
    for payload in (of_draft, of_unknown):
        assert payload == {"review": None, "userErrors": [{"field": ["input", "productId"], "code": "NOT_FOUND"}]}


async def test_review_create_reports_every_problem_at_once(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession, customer: Account
) -> None:
    # given
    product = await factories.create_product(db_session)
    await db_session.commit()

    # when
    payload = await _review(client, customer, product, rating=6, title="t" * 201, body="b" * 5001)
    too_low = await _review(client, customer, product, rating=0)

    # then
    assert payload["userErrors"] == [
        {"field": ["input", "rating"], "code": "INVALID"},
        {"field": ["input", "title"], "code": "TOO_LONG"},
        {"field": ["input", "body"], "code": "TOO_LONG"},
    ]
    assert too_low["userErrors"] == [{"field": ["input", "rating"], "code": "INVALID"}]
    assert await factories.recorded_events(db_session) == []


async def _review_in(session: AsyncSession, principal: Principal, product_id: int) -> DomainError | None:
    try:
        await products_service.create_review(
            session, principal, input=products_service.ReviewCreate(product_id=product_id, rating=5)
        )
        await session.commit()
    except DomainError as exc:
        await session.rollback()
        return exc
    return None


async def test_review_create_answers_already_exists_to_the_loser_of_a_race(
    settings: Settings, db_session: AsyncSession
) -> None:
    # given: one transaction has inserted the review but not committed when a second one tries the same
    product = await factories.create_product(db_session)
    customer = await factories.create_user(db_session)
    await db_session.commit()
    principal = Principal(user_id=customer.id, roles=frozenset({Role.CUSTOMER}))
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as first, sessions() as second:
            await products_service.create_review(
                first, principal, input=products_service.ReviewCreate(product_id=product.id, rating=4)
            )

            # when: the second one waits on the first (PostgreSQL: on the unique index; SQLite: on the write lock)
            racing = asyncio.create_task(_review_in(second, principal, product.id))
            await asyncio.sleep(0.3)
            await first.commit()
            refused = await racing
    finally:
        await engine.dispose()

    # then
    assert refused is not None
    assert [(p.code, p.field) for p in refused.problems] == [("ALREADY_EXISTS", ("input", "productId"))]


async def test_review_create_is_for_signed_in_customers_staff_and_admins(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    product = await factories.create_product(db_session)
    people = await cast(app, db_session)
    variables = {"input": {"productId": _id(product), "rating": 5}}

    # when
    answers = {
        name: await post(client, REVIEW_CREATE, variables, caller.headers) for name, caller in people.callers.items()
    }

    # then
    assert error_codes(answers["anonymous"]) == ["UNAUTHENTICATED"]
    for allowed in ("customer", "other_customer", "staff", "admin"):
        assert answers[allowed]["data"]["reviewCreate"]["userErrors"] == [], allowed
    # The admin's key acts as the admin, who has just reviewed this product.
    assert answers["admin_key_as_staff"]["data"]["reviewCreate"]["userErrors"][0]["code"] == "ALREADY_EXISTS"
