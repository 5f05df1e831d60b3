"""Helpers of the webhook delivery tests: register an endpoint through the API, check a signature independently."""

import base64
import hashlib
import hmac

from httpx import AsyncClient

from tests.auth import Account
from tests.graphql import gql

WEBHOOK_CREATE = """
mutation ($input: WebhookCreateInput!) { webhookCreate(input: $input) { secret userErrors { code } } }
"""


async def create_webhook(client: AsyncClient, staff: Account, url: str, *events: str) -> str:
    """Register an endpoint through the API; return its secret."""
    data = await gql(client, WEBHOOK_CREATE, {"input": {"url": url, "events": list(events)}}, staff.headers)
    assert data["webhookCreate"]["userErrors"] == []
    secret: str = data["webhookCreate"]["secret"]
    return secret


def signature_of(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks signature, computed here from the spec (not by the server's library)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
