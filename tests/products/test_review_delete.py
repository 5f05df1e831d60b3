from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import models as products_models
from tests import factories
from tests.auth import bearer, cast
from tests.graphql import error_codes, gql, post

REVIEW_DELETE = """
mutation ($id: ID!) {
  reviewDelete(input: {reviewId: $id}) {
    deletedReviewId product { rating { average count } } userErrors { field code }
  }
}
"""
NODE = "query ($id: ID!) { node(id: $id) { id } }"


def _id(review: products_models.Review) -> str:
    return encode_global_id("Review", review.id)


async def _reviews(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(products_models.Review)) or 0)


async def test_review_delete_lets_the_author_delete_and_recomputes_the_rating(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a 5-star review by the author and a 2-star one by someone else
    product = await factories.create_product(db_session)
    author = await factories.create_user(db_session)
    review = await factories.create_review(db_session, product=product, author=author, rating=5)
    await factories.create_review(db_session, product=product, author=await factories.create_user(db_session), rating=2)
    await db_session.commit()

    # when
    payload = (await gql(client, REVIEW_DELETE, {"id": _id(review)}, bearer(app, author).headers))["reviewDelete"]
    after = await gql(client, NODE, {"id": _id(review)})

    # then
    assert payload == {
        "deletedReviewId": _id(review),
        "product": {"rating": {"average": 2.0, "count": 1}},
        "userErrors": [],
    }
    assert after == {"node": None}
    assert await factories.recorded_events(db_session) == [
        ("ReviewDeleted", {"reviewId": _id(review), "productId": encode_global_id("Product", product.id)})
    ]


async def test_review_delete_lets_staff_delete_anyones_review(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    product = await factories.create_product(db_session)
    review = await factories.create_review(db_session, product=product, author=await factories.create_user(db_session))
    staff = await factories.create_user(db_session, roles=("STAFF",))
    await db_session.commit()

    # when
    payload = (await gql(client, REVIEW_DELETE, {"id": _id(review)}, bearer(app, staff).headers))["reviewDelete"]

    # then
    assert payload["userErrors"] == []
    assert payload["product"] == {"rating": {"average": None, "count": 0}}
    assert await _reviews(db_session) == 0


async def test_review_delete_is_forbidden_to_other_customers(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    people = await cast(app, db_session)
    review = await factories.create_review(
        db_session, product=await factories.create_product(db_session), author=people.customer
    )
    await db_session.commit()

    # when
    anonymous = await post(client, REVIEW_DELETE, {"id": _id(review)})
    other = await post(client, REVIEW_DELETE, {"id": _id(review)}, people.callers["other_customer"].headers)

    # then
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    assert error_codes(other) == ["FORBIDDEN"]
    assert other["data"] is None
    assert await _reviews(db_session) == 1
    assert await factories.recorded_events(db_session) == []


async def test_review_delete_answers_not_found_for_unknown_reviews_and_those_others_cannot_see(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: a review of a product that was unpublished afterwards
    people = await cast(app, db_session)
    draft = await factories.create_product(db_session, published=False)
    hidden = await factories.create_review(db_session, product=draft, author=people.customer)
    await db_session.commit()
    other = people.callers["other_customer"].headers

    # when
    unknown = await gql(client, REVIEW_DELETE, {"id": encode_global_id("Review", hidden.id + 999)}, other)
    invisible = await gql(client, REVIEW_DELETE, {"id": _id(hidden)}, other)
    own = await gql(client, REVIEW_DELETE, {"id": _id(hidden)}, people.callers["customer"].headers)

    # then
    not_found = [{"field": ["input", "reviewId"], "code": "NOT_FOUND"}]
    assert unknown["reviewDelete"] == {"deletedReviewId": None, "product": None, "userErrors": not_found}
    assert invisible["reviewDelete"]["userErrors"] == not_found
    # The author may still delete it; the product itself stays hidden from them.
    assert own["reviewDelete"] == {"deletedReviewId": _id(hidden), "product": None, "userErrors": []}
