"""Every domain's ORM models in one metadata, for Alembic and the test database set-up."""

from domains.common import outbox
from domains.common.base import Base
from domains.emails import models as emails_models
from domains.orders import models as orders_models
from domains.products import models as products_models
from domains.users import models as users_models
from domains.webhooks import models as webhooks_models

metadata = Base.metadata

__all__ = ["emails_models", "metadata", "orders_models", "outbox", "products_models", "users_models", "webhooks_models"]
