"""SQL of the store's e-mails; no rules here (see service.py)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domains.emails.models import EmailMessage
from domains.orders import models as orders_models
from domains.products import models as products_models


async def email_exists(session: AsyncSession, event_id: int, kind: str) -> bool:
    stmt = select(EmailMessage.id).where(EmailMessage.event_id == event_id, EmailMessage.kind == kind)
    return (await session.execute(stmt)).first() is not None


async def order_lines(session: AsyncSession, order_id: int) -> list[dict[str, Any]]:
    """An order's lines as an e-mail shows them: quantity, line total and the product's name, in order."""
    item, product = orders_models.OrderItem, products_models.Product
    stmt = (
        select(item.quantity, item.line_total, product.name)
        .join(product, product.id == item.product_id)
        .where(item.order_id == order_id)
        .order_by(item.id)
    )
    return [{"quantity": q, "total": total, "name": name} for q, total, name in await session.execute(stmt)]
