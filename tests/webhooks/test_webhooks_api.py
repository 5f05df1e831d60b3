"""webhookCreate, webhookUpdate, webhookDelete, the webhooks connection and Webhook.deliveries."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from domains.common.base import utcnow
from domains.common.outbox import OutboxEvent
from domains.common.principal import SYSTEM
from domains.webhooks import service as webhooks_service
from tests.auth import ANONYMOUS, Account
from tests.graphql import count_statements, error_codes, gql, post

WEBHOOK_CREATE = """
mutation ($input: WebhookCreateInput!) {
  webhookCreate(input: $input) {
    secret webhook { id url events isActive description } userErrors { field code message }
  }
}
"""
WEBHOOK_UPDATE = """
mutation ($input: WebhookUpdateInput!) {
  webhookUpdate(input: $input) { webhook { id url events isActive description } userErrors { field code } }
}
"""
WEBHOOK_DELETE = """
mutation ($id: ID!) { webhookDelete(input: {webhookId: $id}) { deletedWebhookId userErrors { field code } } }
"""
WEBHOOKS = """
query ($first: Int) {
  webhooks(first: $first) {
    totalCount
    nodes {
      url
      deliveries(first: 5) {
        totalCount
        nodes { id eventId eventType status attempts lastResponseStatus nextAttemptAt deliveredAt }
      }
    }
  }
}
"""
PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address; these tests never send to it


async def _create(client: AsyncClient, caller: Account, **fields: Any) -> dict[str, Any]:
    data = await gql(
        client, WEBHOOK_CREATE, {"input": {"url": PUBLIC_URL, "events": ["ORDER_PLACED"]} | fields}, caller.headers
    )
    payload: dict[str, Any] = data["webhookCreate"]
    return payload


@pytest.fixture
async def production_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """An app whose webhook URLs must point at public addresses (as in production)."""
    app = create_app(settings.model_copy(update={"webhook_allow_private_targets": False}))
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        yield http


async def test_webhook_create_returns_the_secret_once_in_the_standard_webhooks_format(
    client: AsyncClient, staff: Account
) -> None:
    # when
    payload = await _create(
        client, staff, events=["ORDER_PLACED", "ORDER_PLACED", "PRODUCT_UPDATED"], description=" ops "
    )
    listed = await gql(client, WEBHOOKS, headers=staff.headers)

    # then
    assert payload["userErrors"] == []
    assert payload["secret"].startswith("whsec_")
    assert len(payload["secret"]) == len("whsec_") + 32
    assert payload["webhook"]["events"] == ["ORDER_PLACED", "PRODUCT_UPDATED"]
    assert (payload["webhook"]["isActive"], payload["webhook"]["description"]) == (True, "ops")
    assert listed["webhooks"]["totalCount"] == 1
    assert "secret" not in str(listed)


async def test_a_webhook_url_on_a_private_address_is_refused_with_a_user_error(
    production_client: AsyncClient, staff: Account
) -> None:
    # when
    refused = {
        url: (await _create(production_client, staff, url=url))["userErrors"]
        for url in (
            "http://127.0.0.1:8000/hook",
            "http://10.1.2.3/hook",
            "http://[::1]/hook",
            "http://[::ffff:192.168.0.1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",  # a name that resolves inside
        )
    }
    accepted = await _create(production_client, staff)

    # then
    for url, errors in refused.items():
        assert [(e["field"], e["code"]) for e in errors] == [(["input", "url"], "INVALID")], url
        assert "private" in errors[0]["message"]
    assert accepted["userErrors"] == []


async def test_development_allows_a_loopback_webhook_url(client: AsyncClient, staff: Account) -> None:
    # when
    payload = await _create(client, staff, url="http://127.0.0.1:9/hook")

    # then
    assert payload["userErrors"] == []


async def test_webhook_create_reports_every_problem_of_its_input_at_once(client: AsyncClient, staff: Account) -> None:
    # when
    payload = await _create(client, staff, url="ftp://example/x", events=[], description="d" * 501)
    credentials = await _create(client, staff, url="https://user:pw@93.184.215.14/")
    blank = await _create(client, staff, url="  ")

    # then
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "url"], "INVALID"),
        (["input", "events"], "REQUIRED"),
        (["input", "description"], "TOO_LONG"),
    ]
    assert [e["code"] for e in credentials["userErrors"]] == ["INVALID"]
    assert [(e["field"], e["code"]) for e in blank["userErrors"]] == [(["input", "url"], "REQUIRED")]
    assert payload["webhook"] is None
    assert payload["secret"] is None


async def test_only_staff_manage_or_see_webhooks(client: AsyncClient, staff: Account, customer: Account) -> None:
    # given
    created = await _create(client, staff)
    webhook_id = created["webhook"]["id"]

    # when
    as_customer = await post(
        client, WEBHOOK_CREATE, {"input": {"url": PUBLIC_URL, "events": ["ORDER_PLACED"]}}, customer.headers
    )
    anonymous = await post(client, WEBHOOKS, headers=ANONYMOUS.headers)
    node = await gql(client, "query ($id: ID!) { node(id: $id) { id } }", {"id": webhook_id}, customer.headers)
    deleted_by_customer = await post(client, WEBHOOK_DELETE, {"id": webhook_id}, customer.headers)

    # then
    assert error_codes(as_customer) == ["FORBIDDEN"]
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    assert node["node"] is None
    assert error_codes(deleted_by_customer) == ["FORBIDDEN"]


async def test_webhook_update_changes_the_given_fields_and_reactivation_clears_the_failure(
    client: AsyncClient, staff: Account, db_session: AsyncSession
) -> None:
    # given
    webhook_id = (await _create(client, staff, description="first"))["webhook"]["id"]

    # when
    off = await gql(client, WEBHOOK_UPDATE, {"input": {"webhookId": webhook_id, "isActive": False}}, staff.headers)
    changed = await gql(
        client,
        WEBHOOK_UPDATE,
        {"input": {"webhookId": webhook_id, "events": ["ORDER_CANCELLED"], "isActive": True}},
        staff.headers,
    )
    empty = await gql(client, WEBHOOK_UPDATE, {"input": {"webhookId": webhook_id, "events": []}}, staff.headers)

    # then
    assert off["webhookUpdate"]["webhook"]["isActive"] is False
    assert changed["webhookUpdate"]["webhook"] == {
        "id": webhook_id,
        "url": PUBLIC_URL,
        "events": ["ORDER_CANCELLED"],
        "isActive": True,
        "description": "first",
    }
    assert [(e["field"], e["code"]) for e in empty["webhookUpdate"]["userErrors"]] == [
        (["input", "events"], "REQUIRED")
    ]


async def test_webhook_delete_removes_it_and_a_second_delete_is_not_found(client: AsyncClient, staff: Account) -> None:
    # given
    webhook_id = (await _create(client, staff))["webhook"]["id"]

    # when
    first = await gql(client, WEBHOOK_DELETE, {"id": webhook_id}, staff.headers)
    second = await gql(client, WEBHOOK_DELETE, {"id": webhook_id}, staff.headers)
    listed = await gql(client, WEBHOOKS, headers=staff.headers)

    # then
    assert first["webhookDelete"] == {"deletedWebhookId": webhook_id, "userErrors": []}
    assert second["webhookDelete"]["userErrors"] == [{"field": ["input", "webhookId"], "code": "NOT_FOUND"}]
    assert listed["webhooks"]["totalCount"] == 0


async def test_deliveries_of_a_page_of_webhooks_load_in_one_statement(
    app: FastAPI, client: AsyncClient, staff: Account, db_session: AsyncSession
) -> None:
    # given: three endpoints, each with a delivery of one order event
    for _ in range(3):
        await _create(client, staff)
    event = OutboxEvent(topic="OrderPlaced", payload={"orderId": "T3JkZXI6MQ==", "total": "1.00"}, created_at=utcnow())
    db_session.add(event)
    await db_session.flush()
    planned = await webhooks_service.plan_deliveries(db_session, SYSTEM, event=event, now=utcnow())
    again = await webhooks_service.plan_deliveries(db_session, SYSTEM, event=event, now=utcnow())
    await db_session.commit()

    # when
    with count_statements(app) as statements:
        data = await gql(client, WEBHOOKS, {"first": 10}, staff.headers)

    # then
    assert (len(planned), again) == (3, [])
    deliveries = [webhook["deliveries"] for webhook in data["webhooks"]["nodes"]]
    assert [d["totalCount"] for d in deliveries] == [1, 1, 1]
    first = deliveries[0]["nodes"][0]
    assert first["eventId"] == f"evt_{event.id}"
    assert (first["eventType"], first["status"], first["attempts"], first["deliveredAt"]) == (
        "ORDER_PLACED",
        "PENDING",
        0,
        None,
    )
    # the page, one statement for every endpoint's deliveries, one for their counts, one for the total
    assert len([s for s in statements if "webhook_delivery" in s]) == 2
