"""Expected failures of order use cases."""

from domains.common.exceptions import DomainError, ErrorCode, NotFoundError
from domains.orders.models import OrderStatus

ORDER_NOT_FOUND = "No such order."


class OrderNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(ORDER_NOT_FOUND, ("input", "orderId"))


class IdempotencyKeyReusedError(DomainError):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This idempotency key was used for an order with other items.",
            ("input", "idempotencyKey"),
        )


class InvalidTransitionError(DomainError):
    def __init__(self, current: OrderStatus, wanted: OrderStatus, field: tuple[str, ...]) -> None:
        super().__init__(ErrorCode.INVALID_TRANSITION, f"An order that is {current} cannot become {wanted}.", field)
