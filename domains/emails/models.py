"""E-mails the store sends after an event (order confirmation, status changes): rendered once, sent by attempts."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domains.common.attempts import Attempted
from domains.common.base import Base, UTCDateTime

ADDRESS_MAX_LENGTH = 320
SUBJECT_MAX_LENGTH = 200


class EmailKind(StrEnum):
    ORDER_CONFIRMATION = "ORDER_CONFIRMATION"
    ORDER_STATUS = "ORDER_STATUS"


class EmailStatus(StrEnum):
    PENDING = "PENDING"  # not sent yet; tried again at next_attempt_at
    SENT = "SENT"  # the SMTP server accepted it
    LOGGED = "LOGGED"  # no SMTP server configured (development): logged and kept here, not sent
    FAILED = "FAILED"  # refused for good (a 5xx reply) or every attempt failed


class EmailMessage(Attempted, Base):
    __tablename__ = "email_message"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'SENT', 'LOGGED', 'FAILED')", name="status_valid"),
        # One e-mail of a kind per event: handling an event twice renders nothing new.
        UniqueConstraint("event_id", "kind"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer)  # the outbox event; no foreign key: those rows are purged
    kind: Mapped[str] = mapped_column(String(32))
    to_address: Mapped[str] = mapped_column(String(ADDRESS_MAX_LENGTH))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX_LENGTH))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
