import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from domains.common.ids import encode_global_id
from domains.products import models as products_models
from tests.auth import Account
from tests.factories import create_category, create_product, create_review, create_user
from tests.graphql import count_statements, error_codes, gql, post

DEEP_CATALOG = """
query ($n: Int!) {
  products(first: $n) {
    edges { node {
      category { name parent { name } }
      rating { average count }
      reviews(first: 5) { totalCount edges { node { rating author { name } } } }
    } }
  }
}
"""
NODE = "query ($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
PRODUCT_BY = "query ($id: ID, $slug: String) { product(id: $id, slug: $slug) { name stock } }"
CATEGORY_TREE = """
query ($slug: String!) {
  category(slug: $slug) {
    name children { name } parent { name }
    products(first: 10) { totalCount nodes { name } }
  }
}
"""


async def _catalog(session: AsyncSession, products: int) -> list[products_models.Product]:
    root = await create_category(session, name="Root")
    leaves = [await create_category(session, parent=root) for _ in range(3)]
    authors = [await create_user(session) for _ in range(6)]
    rows = [await create_product(session, category=leaves[i % 3]) for i in range(products)]
    for product in rows[-10:]:  # the newest, so that both pages show reviews
        for author in authors:
            await create_review(session, product=product, author=author, rating=1 + product.id % 5)
    await session.commit()
    return rows


async def test_deep_catalog_query_runs_the_same_statements_for_5_and_50_products(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    await _catalog(db_session, 50)

    # when
    with count_statements(app) as few:
        small = await gql(client, DEEP_CATALOG, {"n": 5})
    with count_statements(app) as many:
        large = await gql(client, DEEP_CATALOG, {"n": 50})

    # then: products with their categories, the parent categories, review pages with their
    # authors, review counts
    assert len(small["products"]["edges"]) == 5
    assert len(large["products"]["edges"]) == 50
    assert len(few) == len(many) == 4


TOP_PRODUCTS = """
query TopProducts { products(first: 50) { edges { node {
  id name price { amount currency } stock createdAt category { id name }
  reviews(first: 5) { edges { node { id rating body author { id name } } } } } } } }
"""
PRODUCT_BY_ID = """
query ProductById($id: ID!) { node(id: $id) { ... on Product {
  id name price { amount currency } stock createdAt category { id name }
  reviews(first: 5) { edges { node { id rating body author { id name } } } } } } }
"""


async def test_benchmark_operations_run_two_statements_each(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    rows = await _catalog(db_session, 12)

    # when
    with count_statements(app) as top:
        listed = await gql(client, TOP_PRODUCTS)
    with count_statements(app) as single:
        node = await gql(client, PRODUCT_BY_ID, {"id": encode_global_id("Product", rows[-1].id)})

    # then: the product(s) joined with categories, then the review pages joined with authors
    assert len(listed["products"]["edges"]) == 12
    assert len(node["node"]["reviews"]["edges"]) == 5
    assert node["node"]["category"]["name"].startswith("Category")
    assert all(edge["node"]["author"]["name"] for edge in node["node"]["reviews"]["edges"])
    assert len(top) == len(single) == 2


async def test_node_round_trips_every_node_type(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    category = await create_category(db_session)
    product = await create_product(db_session, category=category)
    author = await create_user(db_session)
    review = await create_review(db_session, product=product, author=author)
    await db_session.commit()
    ids = {
        "Category": encode_global_id("Category", category.id),
        "Product": encode_global_id("Product", product.id),
        "User": encode_global_id("User", author.id),
        "Review": encode_global_id("Review", review.id),
    }

    # when
    single = {name: (await gql(client, NODE, {"id": gid}))["node"] for name, gid in ids.items()}
    many = (await gql(client, NODES, {"ids": list(ids.values())}))["nodes"]

    # then
    assert single == {name: {"__typename": name, "id": gid} for name, gid in ids.items()}
    assert many == [{"__typename": name, "id": gid} for name, gid in ids.items()]


async def test_node_of_an_unknown_id_is_null(client: AsyncClient) -> None:
    # when
    data = await gql(client, NODES, {"ids": [encode_global_id("Product", 999999), encode_global_id("User", 1)]})

    # then
    assert data["nodes"] == [None, None]


@pytest.mark.parametrize(
    "bad_id",
    [
        "not base64 at all!",
        "UHJvZHVjdA==",  # "Product" without a key
        encode_global_id("Product", 1)[:-2],
        encode_global_id("NoSuchType", 1),
        encode_global_id("ProductConnection", 1),  # a type, but not a Node
        "UHJvZHVjdDphYmM=",  # "Product:abc"
    ],
)
async def test_node_of_a_malformed_id_is_bad_user_input(client: AsyncClient, bad_id: str) -> None:
    # when
    body = await post(client, NODE, {"id": bad_id})

    # then
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["data"] == {"node": None}


async def test_nodes_refuses_more_than_100_ids(client: AsyncClient) -> None:
    # when
    body = await post(client, NODES, {"ids": [encode_global_id("Product", n) for n in range(1, 102)]})

    # then
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_unpublished_products_are_invisible_to_anonymous_clients(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    hidden = await create_product(db_session, published=False, name="Secret")
    shown = await create_product(db_session, name="Public")
    await db_session.commit()

    # when
    listed = await gql(client, "{ products { totalCount nodes { name } } }")
    by_id = await gql(client, PRODUCT_BY, {"id": encode_global_id("Product", hidden.id)})
    by_slug = await gql(client, PRODUCT_BY, {"slug": shown.slug})
    by_node = await gql(client, NODE, {"id": encode_global_id("Product", hidden.id)})

    # then
    assert listed["products"] == {"totalCount": 1, "nodes": [{"name": "Public"}]}
    assert by_id["product"] is None
    assert by_slug["product"] == {"name": "Public", "stock": None}
    assert by_node["node"] is None


async def test_only_staff_read_whether_a_product_is_published(
    client: AsyncClient, db_session: AsyncSession, customer: Account, staff: Account
) -> None:
    # given
    hidden = await create_product(db_session, published=False, name="Draft")
    shown = await create_product(db_session, name="Live")
    await db_session.commit()
    query = "{ products(orderBy: {field: NAME, direction: ASC}) { nodes { name isPublished stock } } }"
    by_id = "query ($id: ID!) { node(id: $id) { ... on Product { name isPublished } } }"

    # when
    as_staff = await gql(client, query, headers=staff.headers)
    hidden_by_node = await gql(client, by_id, {"id": encode_global_id("Product", hidden.id)}, headers=staff.headers)
    as_customer = await gql(client, query, headers=customer.headers)
    anonymous = await gql(client, query)

    # then
    assert as_staff["products"]["nodes"] == [
        {"name": "Draft", "isPublished": False, "stock": hidden.stock},
        {"name": "Live", "isPublished": True, "stock": shown.stock},
    ]
    assert hidden_by_node["node"] == {"name": "Draft", "isPublished": False}
    assert (
        as_customer["products"]["nodes"]
        == anonymous["products"]["nodes"]
        == [{"name": "Live", "isPublished": None, "stock": None}]
    )


async def test_product_needs_exactly_one_of_id_and_slug(client: AsyncClient) -> None:
    # when
    neither = await post(client, PRODUCT_BY, {})
    both = await post(client, PRODUCT_BY, {"id": encode_global_id("Product", 1), "slug": "x"})
    wrong_type = await post(client, PRODUCT_BY, {"id": encode_global_id("Category", 1)})

    # then
    assert error_codes(neither) == error_codes(both) == error_codes(wrong_type) == ["BAD_USER_INPUT"]


async def test_category_shows_its_tree_and_products(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    root = await create_category(db_session, name="Root")
    await create_category(db_session, name="Beta", parent=root)
    await create_category(db_session, name="Alpha", parent=root)
    await create_product(db_session, category=root, name="Rooted")
    await db_session.commit()

    # when
    data = await gql(client, CATEGORY_TREE, {"slug": root.slug})

    # then
    assert data["category"] == {
        "name": "Root",
        "children": [{"name": "Alpha"}, {"name": "Beta"}],
        "parent": None,
        "products": {"totalCount": 1, "nodes": [{"name": "Rooted"}]},
    }


async def test_categories_lists_top_level_and_children(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    root = await create_category(db_session, name="Root")
    await create_category(db_session, name="Child", parent=root)
    await db_session.commit()
    query = (
        "query ($p: ID, $top: Boolean!) { categories(parentId: $p, topLevelOnly: $top) { totalCount nodes { name } } }"
    )

    # when
    everything = await gql(client, query, {"top": False})
    top = await gql(client, query, {"top": True})
    children = await gql(client, query, {"p": encode_global_id("Category", root.id), "top": False})

    # then
    assert everything["categories"] == {"totalCount": 2, "nodes": [{"name": "Child"}, {"name": "Root"}]}
    assert top["categories"] == {"totalCount": 1, "nodes": [{"name": "Root"}]}
    assert children["categories"] == {"totalCount": 1, "nodes": [{"name": "Child"}]}


async def test_product_filter_combines_conditions(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    category = await create_category(db_session)
    await create_product(db_session, name="Blue Lamp", price="30.00", stock=0, category=category)
    await create_product(db_session, name="Red Lamp", price="20.00", stock=3, category=category)
    await create_product(db_session, name="Red Chair", price="25.00", stock=3)
    await db_session.commit()
    query = "query ($f: ProductFilter) { products(filter: $f, orderBy: {field: NAME}) { nodes { name } } }"

    # when
    lamps = await gql(client, query, {"f": {"search": "LAMP"}})
    cheap_in_stock = await gql(client, query, {"f": {"maxPrice": "25.00", "inStock": True}})
    sold_out = await gql(client, query, {"f": {"inStock": False}})
    in_category = await gql(client, query, {"f": {"categoryId": encode_global_id("Category", category.id)}})
    pricey = await gql(client, query, {"f": {"minPrice": "25.00"}})

    # then
    assert lamps["products"]["nodes"] == [{"name": "Blue Lamp"}, {"name": "Red Lamp"}]
    assert cheap_in_stock["products"]["nodes"] == [{"name": "Red Chair"}, {"name": "Red Lamp"}]
    assert sold_out["products"]["nodes"] == [{"name": "Blue Lamp"}]
    assert in_category["products"]["nodes"] == [{"name": "Blue Lamp"}, {"name": "Red Lamp"}]
    assert pricey["products"]["nodes"] == [{"name": "Blue Lamp"}, {"name": "Red Chair"}]


async def test_user_reviews_and_review_product_resolve(client: AsyncClient, db_session: AsyncSession) -> None:
    # given
    author = await create_user(db_session, name="Ann")
    product = await create_product(db_session, name="Kettle")
    review = await create_review(db_session, product=product, author=author, rating=4)
    await db_session.commit()
    query = """query ($id: ID!) { node(id: $id) { ... on Review {
        rating product { name rating { average count } }
        author { name email roles reviews { totalCount nodes { rating } } } } } }"""

    # when
    data = await gql(client, query, {"id": encode_global_id("Review", review.id)})

    # then
    assert data["node"] == {
        "rating": 4,
        "product": {"name": "Kettle", "rating": {"average": 4.0, "count": 1}},
        "author": {"name": "Ann", "email": None, "roles": None, "reviews": {"totalCount": 1, "nodes": [{"rating": 4}]}},
    }


async def test_me_is_null_when_anonymous(client: AsyncClient) -> None:
    # when
    data = await gql(client, "{ me { id } }")

    # then
    assert data["me"] is None


async def test_a_review_by_id_brings_its_author_in_the_same_statement(
    app: FastAPI, client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    author = await create_user(db_session, name="Bea")
    review = await create_review(db_session, product=await create_product(db_session), author=author)
    await db_session.commit()
    query = "query ($id: ID!) { node(id: $id) { ... on Review { rating author { name } } } }"

    # when
    with count_statements(app) as statements:
        data = await gql(client, query, {"id": encode_global_id("Review", review.id)})

    # then
    assert data["node"] == {"rating": 5, "author": {"name": "Bea"}}
    assert len(statements) == 1
