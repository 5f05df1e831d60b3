"""Send one e-mail over SMTP (aiosmtplib), or log it when no server is configured (development).

`SMTP_URL` is `smtp://user:password@host:587` (STARTTLS when the server offers it) or
`smtps://…:465` (TLS from the start). A reply in the 4xx range or a connection failure is worth
another attempt later; a 5xx reply is a refusal for good.
"""

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog

from domains.emails.service import MailOutcome, OutgoingEmail

logger = structlog.get_logger("tasks.mailer")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    url: str | None  # None: log e-mails instead of sending them
    sender: str
    timeout: float = 10.0


def _message(config: SmtpConfig, email: OutgoingEmail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(idstring=f"email-{email.email_id}")
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


async def send(config: SmtpConfig, email: OutgoingEmail) -> MailOutcome:
    """Send (or log) one e-mail; never raises for what the server or the network does."""
    if config.url is None:
        logger.info("emails.logged", email_id=email.email_id, to=email.to, subject=email.subject, body=email.text)
        return MailOutcome(logged=True)
    parts = urlsplit(config.url)
    implicit_tls = parts.scheme == "smtps"
    try:
        await aiosmtplib.send(
            _message(config, email),
            hostname=parts.hostname or "localhost",
            port=parts.port or (465 if implicit_tls else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit_tls,
            timeout=config.timeout,
        )
    except aiosmtplib.SMTPResponseException as exc:
        return MailOutcome(error=f"{exc.code} {exc.message}", retry=exc.code < 500)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return MailOutcome(error=f"{type(exc).__name__}: {exc}")
    return MailOutcome(sent=True)
