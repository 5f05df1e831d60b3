"""Expected failures of the webhook use cases, and the messages staff may see."""

from domains.common.exceptions import NotFoundError

NO_SUCH_WEBHOOK = "No such webhook."
CHOOSE_EVENTS = "Choose at least one event."


class WebhookNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(NO_SUCH_WEBHOOK, ("input", "webhookId"))
