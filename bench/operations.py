"""The two operations the benchmark sends, and the global ids they carry."""

import base64
from dataclasses import dataclass
from typing import Any

import orjson

PRODUCT_FIELDS = (
    "id name price { amount currency } stock createdAt category { id name } "
    "reviews(first: 5) { edges { node { id rating body author { id name } } } }"
)
TOP_PRODUCTS = "TopProducts"
PRODUCT_BY_ID = "ProductById"
TOP_PRODUCTS_PAGE_SIZE = 50
REVIEWS_PAGE_SIZE = 5


def top_products_document(first: int = TOP_PRODUCTS_PAGE_SIZE) -> str:
    """Return the TopProducts document for a page size (the bench sends 50)."""
    return f"query TopProducts {{ products(first: {first}) {{ edges {{ node {{ {PRODUCT_FIELDS} }} }} }} }}"


PRODUCT_BY_ID_DOCUMENT = f"query ProductById($id: ID!) {{ node(id: $id) {{ ... on Product {{ {PRODUCT_FIELDS} }} }} }}"


@dataclass(frozen=True, slots=True)
class Operation:
    """One benchmarked GraphQL operation: its name and how to build a request body."""

    name: str
    document: str

    def body(self, variables: dict[str, Any] | None = None) -> bytes:
        """Return the POST /graphql JSON body."""
        payload: dict[str, Any] = {"operationName": self.name, "query": self.document}
        if variables is not None:
            payload["variables"] = variables
        return orjson.dumps(payload)


OPERATIONS = (
    Operation(TOP_PRODUCTS, top_products_document()),
    Operation(PRODUCT_BY_ID, PRODUCT_BY_ID_DOCUMENT),
)


def global_id(type_name: str, pk: int) -> str:
    """Return the Relay global id the server emits: base64 of `Type:pk`."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


def parse_global_id(value: str) -> tuple[str, int] | None:
    """Split a global id into type name and primary key; None when it is not one."""
    try:
        type_name, _, pk = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8").partition(":")
        return type_name, int(pk)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
