import re

from fastapi import FastAPI
from httpx import AsyncClient
from starlette.routing import Route

from api.graphiql import MOUNT_PATH

GRAPHIQL_ASSET = re.compile(r'(?:src|href)="([^"]+\.(?:js|css))"')


async def test_graphiql_is_served_with_every_asset_from_this_server(client: AsyncClient) -> None:
    # when
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assets = GRAPHIQL_ASSET.findall(page.text)
    fetched = [await client.get(url) for url in assets]

    # then
    assert page.status_code == 200
    assert "unpkg.com" not in page.text
    assert len(assets) >= 5
    assert all(url.startswith(MOUNT_PATH + "/") for url in assets)
    assert [response.status_code for response in fetched] == [200] * len(assets)
    assert all(response.content for response in fetched)


async def test_queries_work_over_get(client: AsyncClient) -> None:
    # when: with a header no plain HTML form or link can send (CSRF prevention, tests/api/test_http.py)
    response = await client.get(
        "/graphql", params={"query": "{ products { totalCount } }"}, headers={"Apollo-Require-Preflight": "true"}
    )

    # then
    assert response.status_code == 200
    assert response.json()["data"] == {"products": {"totalCount": 0}}


async def test_introspection_is_on_in_development(client: AsyncClient) -> None:
    # when
    response = await client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})

    # then
    assert response.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}


async def test_graphql_is_the_first_route_and_the_others_still_answer(app: FastAPI, client: AsyncClient) -> None:
    # Starlette's router tries the routes in order: nearly every request is for /graphql.
    assert isinstance(app.routes[0], Route)
    assert app.routes[0].path == "/graphql"
    assert (await client.get("/health")).status_code == 200
    assert "http_requests_total" in (await client.get("/metrics")).text
    assert (await client.post("/graphql", json={"query": "{ __typename }"})).json()["data"] == {"__typename": "Query"}
