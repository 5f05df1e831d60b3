"""Order e-mails: rendered from the templates, sent over SMTP to a real server (aiosmtpd), or logged in development."""

import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.settings import Settings
from domains.emails.models import EmailMessage as EmailRow
from domains.emails.service import OutgoingEmail
from tasks import mailer
from tests import factories
from tests.auth import Account, signed_in
from tests.graphql import gql
from tests.orders.conftest import ORDER_STATUS_UPDATE, lines, place
from tests.servers import free_port


@dataclass
class Mailbox:
    """What the SMTP server received; `reply` overrides its answer to DATA (e.g. "550 …")."""

    messages: list[EmailMessage] = field(default_factory=list)
    reply: str | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.reply is not None:
            return self.reply
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    """A real SMTP server on a loopback port, in a thread of its own; yields it and its smtp:// URL."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


async def _app(settings: Settings, **overrides: Any) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"redis_url": None, **overrides}))
    async with LifespanManager(app):
        yield app


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


async def test_placing_and_paying_an_order_sends_the_customer_two_emails(
    settings: Settings, mailbox: tuple[Mailbox, str], staff: Account, customer: Account, db_session: AsyncSession
) -> None:
    # given
    box, url = mailbox
    product = await factories.create_product(db_session, name="Wool Socks", price="7.25", stock=5)
    await db_session.commit()
    async for app in _app(settings, smtp_url=SecretStr(url), email_from="Shop <shop@example.com>"):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            # when
            placed = await place(client, customer, lines((product.id, 2)))
            order = placed["data"]["orderPlace"]["order"]
            await app.state.tasks.drain(within=10)
            await gql(client, ORDER_STATUS_UPDATE, {"id": order["id"], "status": "PAID"}, staff.headers)
            await app.state.tasks.drain(within=10)

    # then
    confirmation, paid = box.messages
    assert (confirmation["To"], confirmation["From"]) == (customer.user.email, "Shop <shop@example.com>")
    assert confirmation["Subject"] == f"Your order {order['number']}"
    assert "2 × Wool Socks: 14.50 USD" in _text(confirmation)
    assert "Total: 14.50 USD" in _text(confirmation)
    assert "<strong>14.50 USD</strong>" in _html(confirmation)
    assert paid["Subject"] == f"Your order {order['number']} is paid"
    assert "is now paid (it was awaiting payment)" in _text(paid)
    rows = (await db_session.execute(select(EmailRow).order_by(EmailRow.id))).scalars().all()
    assert [(row.kind, row.status, row.attempts) for row in rows] == [
        ("ORDER_CONFIRMATION", "SENT", 1),
        ("ORDER_STATUS", "SENT", 1),
    ]


async def test_without_an_smtp_server_emails_are_logged_and_kept_with_html_escaped(
    settings: Settings, db_session: AsyncSession, token_issuer: Any
) -> None:
    # given: a customer whose name is markup

    user = await factories.create_user(db_session, name="<b>Eve</b>")
    product = await factories.create_product(db_session, stock=5)
    await db_session.commit()
    caller = signed_in(token_issuer, user)
    async for app in _app(settings, smtp_url=None):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            # when
            await place(client, caller, lines((product.id, 1)))
            await app.state.tasks.drain(within=10)

    # then
    row = (await db_session.execute(select(EmailRow))).scalar_one()
    assert (row.status, row.to_address, row.sent_at) == ("LOGGED", user.email, None)
    assert "Hello <b>Eve</b>," in row.text_body
    assert "Hello &lt;b&gt;Eve&lt;/b&gt;," in row.html_body


@pytest.mark.parametrize(("reply", "retry"), [("451 4.3.0 try again later", True), ("550 5.1.1 no such user", False)])
async def test_a_4xx_reply_is_worth_another_attempt_and_a_5xx_is_not(
    mailbox: tuple[Mailbox, str], reply: str, retry: bool
) -> None:
    # given
    box, url = mailbox
    box.reply = reply
    outgoing = OutgoingEmail(1, "ann@example.com", "Hi", "text", "<p>html</p>")

    # when
    outcome = await mailer.send(mailer.SmtpConfig(url=url, sender="shop@example.com"), outgoing)

    # then
    assert (outcome.sent, outcome.retry) == (False, retry)
    assert outcome.error is not None
    assert outcome.error.startswith(reply[:3])


async def test_an_smtp_server_that_is_down_is_worth_another_attempt() -> None:
    outgoing = OutgoingEmail(1, "ann@example.com", "Hi", "text", "<p>html</p>")
    outcome = await mailer.send(
        mailer.SmtpConfig(url=f"smtp://127.0.0.1:{free_port()}", sender="shop@example.com", timeout=2), outgoing
    )
    assert (outcome.sent, outcome.retry, outcome.label) == (False, True, "retryable")
