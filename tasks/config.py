"""What the task jobs need to know, handed in by the process that runs them (api/tasks.py, api/app.py)."""

from dataclasses import dataclass, field
from datetime import timedelta

from domains.common.attempts import RetryPolicy
from tasks.mailer import SmtpConfig

# How much longer than its HTTP timeout an attempt holds its delivery: a worker killed mid-attempt
# releases it after this, and the re-drive job puts it on the queue again.
LEASE_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class TaskConfig:
    """Timings and policies of the background jobs."""

    webhook_timeout: timedelta = timedelta(seconds=10)
    # The retry schedule of every outgoing delivery: webhook attempts and e-mails alike.
    webhook_retry: RetryPolicy = field(default_factory=RetryPolicy)
    webhook_private_targets_allowed: bool = False
    smtp: SmtpConfig = field(default_factory=lambda: SmtpConfig(url=None, sender="Storefront <no-reply@localhost>"))
    # A row or delivery put on the queue and still not handled after this is put on it again.
    redispatch_after: timedelta = timedelta(seconds=60)
    outbox_retention: timedelta = timedelta(days=7)
    delivery_retention: timedelta = timedelta(days=30)
    idempotency_key_retention: timedelta = timedelta(hours=24)
    refresh_token_retention: timedelta = timedelta(days=7)  # kept this long after they expire

    @property
    def webhook_lease(self) -> timedelta:
        return self.webhook_timeout + LEASE_MARGIN

    @property
    def smtp_lease(self) -> timedelta:
        return timedelta(seconds=self.smtp.timeout) + LEASE_MARGIN
