"""Expected failures of catalog and review use cases, and the messages the client may see."""

from collections.abc import Sequence

from domains.common.exceptions import DomainError, ErrorCode, FieldProblem, NotFoundError

NOT_YOUR_REVIEW = "Only the review's author or staff can delete it."
NO_SUCH_CATEGORY = "No such category."
NO_SUCH_PRODUCT = "No such product."
NO_SUCH_REVIEW = "No such review."


def slug_taken(field: Sequence[str]) -> FieldProblem:
    """The problem of a slug that another object of the same kind already has."""
    return FieldProblem(ErrorCode.ALREADY_EXISTS, "This slug is taken.", tuple(field))


def sku_taken(field: Sequence[str]) -> FieldProblem:
    """The problem of a SKU that another product already has."""
    return FieldProblem(ErrorCode.ALREADY_EXISTS, "Another product has this SKU.", tuple(field))


def category_missing(field: Sequence[str]) -> FieldProblem:
    """The problem of an id that names no category."""
    return FieldProblem(ErrorCode.NOT_FOUND, NO_SUCH_CATEGORY, tuple(field))


def review_exists() -> FieldProblem:
    """The problem of a second review of one product by one user."""
    return FieldProblem(ErrorCode.ALREADY_EXISTS, "You have already reviewed this product.", ("input", "productId"))


class CategoryNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(NO_SUCH_CATEGORY, ("input", "categoryId"))


class ProductNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(NO_SUCH_PRODUCT, ("input", "productId"))


class ReviewNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(NO_SUCH_REVIEW, ("input", "reviewId"))


class CategoryInUseError(DomainError):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.REFERENCED,
            "The category still has subcategories or products; move or delete them first.",
            ("input", "categoryId"),
        )


class ProductOrderedError(DomainError):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.REFERENCED,
            "The product appears in orders, so it cannot be deleted; unpublish it instead.",
            ("input", "productId"),
        )


class InsufficientStockError(DomainError):
    def __init__(self, stock: int) -> None:
        super().__init__(
            ErrorCode.OUT_OF_STOCK, f"Only {stock} units are in stock; stock cannot go below 0.", ("input", "delta")
        )


class StockLimitError(DomainError):
    def __init__(self, maximum: int) -> None:
        super().__init__(ErrorCode.INVALID, f"Stock cannot exceed {maximum} units.", ("input", "delta"))
