"""The transactional outbox: domain events written with the change that caused them.

Revision ID: f5b50e799c11
Revises: a7120bacfd2b
Create Date: 2026-11-27 10:09:00.049272
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f5b50e799c11"
down_revision: str | None = "a7120bacfd2b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("outbox_event_pkey")),
    )
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("outbox_event_published_at_id_idx"), ["published_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("outbox_event_published_at_id_idx"))

    op.drop_table("outbox_event")
