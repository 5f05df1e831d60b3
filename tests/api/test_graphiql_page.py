"""The GraphiQL page: its settings block per mode, and the example documents it opens on, run for real."""

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.graphiql import CONFIG_ELEMENT_ID, OWN_PATH, script_json
from api.graphiql_examples import AUTHORIZATION_PLACEHOLDER, HEADERS_HINT
from api.settings import AppEnv, Settings
from scripts.seed import DEMO_ACCOUNTS, DEMO_PASSWORD, SeedSize, seed
from tests import factories

CONFIG_BLOCK = re.compile(rf'<script type="application/json" id="{CONFIG_ELEMENT_ID}">(.*?)</script>', re.DOTALL)
HTML = {"Accept": "text/html"}


def _config(page: str) -> dict[str, Any]:
    (block,) = CONFIG_BLOCK.findall(page)
    config: dict[str, Any] = json.loads(block)
    return config


async def _run(client: AsyncClient, document: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.post("/graphql", json={"query": document})).json()
    assert "errors" not in body, body
    return body


@pytest.fixture
async def production_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """The app as deployed with GRAPHIQL=true: production, GraphiQL on."""
    changes = {
        "app_env": AppEnv.PRODUCTION,
        "graphiql": True,
        "cors_origins": ["https://shop.example.com"],
        "trusted_hosts": ["testserver"],
    }
    app = create_app(settings.model_copy(update=changes))
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield http


async def test_in_development_graphiql_opens_on_the_catalog_and_the_demo_sign_in(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    # given: the demo accounts and catalog
    await seed(db_session, SeedSize(products=3, customers=1, reviews_per_customer=1))
    await db_session.commit()

    # when
    config = _config((await client.get("/graphql", headers=HTML)).text)
    first, sign_in = config["tabs"]
    products = await _run(client, first["query"])
    signed_in = await _run(client, sign_in["query"])

    # then: the first tab lists products and names every demo account and the password
    assert config["query"] == first["query"]
    assert first["query"].splitlines()[0].startswith("# ")
    assert "query FirstProducts" in first["query"]
    assert products["data"]["products"]["nodes"]
    for email, _, _ in DEMO_ACCOUNTS:
        assert email in first["query"]
    assert f"`{DEMO_PASSWORD}`" in first["query"]
    # the second signs in as the demo customer
    assert signed_in["data"]["tokenCreate"]["userErrors"] == []
    assert signed_in["data"]["tokenCreate"]["accessToken"]
    assert signed_in["data"]["tokenCreate"]["user"]["email"] == "customer@example.com"
    # and every tab opens with the Authorization hint the page's fetcher leaves out
    assert [tab["headers"] for tab in config["tabs"]] == [HEADERS_HINT, HEADERS_HINT]
    assert json.loads(HEADERS_HINT) == {"Authorization": AUTHORIZATION_PLACEHOLDER}
    assert config["headers"] == HEADERS_HINT
    assert config["placeholder"] == AUTHORIZATION_PLACEHOLDER


async def test_outside_development_graphiql_opens_on_a_neutral_example(
    production_client: AsyncClient, db_session: AsyncSession
) -> None:
    # given
    await factories.create_product(db_session, name="Plain Kettle")
    await db_session.commit()

    # when
    page = (await production_client.get("/graphql", headers=HTML)).text
    config = _config(page)
    (tab,) = config["tabs"]
    products = await _run(production_client, tab["query"])

    # then: no demo account, no password, no sign-in tab; the same working query
    assert "example.com" not in page
    assert DEMO_PASSWORD not in page
    assert "tokenCreate" in tab["query"]
    assert products["data"]["products"]["nodes"][0]["name"] == "Plain Kettle"
    assert tab["headers"] == HEADERS_HINT


async def test_the_page_script_and_stylesheet_are_served_from_this_server(client: AsyncClient) -> None:
    # when
    script = await client.get(f"{OWN_PATH}/storefront-graphiql.js")
    stylesheet = await client.get(f"{OWN_PATH}/storefront-graphiql.css")

    # then
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert CONFIG_ELEMENT_ID in script.text
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"].startswith("text/css")


def test_the_settings_block_cannot_be_closed_by_what_it_carries() -> None:
    # given: text that would end the block and start a script of its own, were it written as it is
    hostile = {"query": "</script><script>alert(1)</script><!-- & \u2028"}

    # when
    block = script_json(hostile)

    # then: no markup character survives, and JSON.parse (here json.loads) reads the same value back
    assert not set("<>&") & set(block)
    assert "\u2028" not in block
    assert json.loads(block) == hostile
