"""Before measuring: both servers must give the same JSON for the same requests."""

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bench.operations import OPERATIONS, PRODUCT_BY_ID, TOP_PRODUCTS, TOP_PRODUCTS_PAGE_SIZE, global_id
from bench.servers import Server

PRODUCTS_CHECKED = 25
HEADERS = {"content-type": "application/json"}


class VerificationError(RuntimeError):
    """The real server and the reference disagree, or one of them answered badly."""


@dataclass(frozen=True, slots=True)
class Verification:
    requests: int
    byte_identical: int


def first_difference(left: Any, right: Any, path: str = "$") -> str | None:
    """The JSON path of the first place where two decoded documents differ, or None."""
    if type(left) is not type(right):
        return f"{path}: {type(left).__name__} {left!r:.80} vs {type(right).__name__} {right!r:.80}"
    if isinstance(left, dict):
        if list(left) != list(right):
            return f"{path}: keys {list(left)} vs {list(right)}"
        for key in left:
            found = first_difference(left[key], right[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(left, list):
        if len(left) != len(right):
            return f"{path}: {len(left)} items vs {len(right)}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if left == right else f"{path}: {left!r:.80} vs {right!r:.80}"


def _post(client: httpx.Client, server: Server, body: bytes) -> tuple[bytes, Any]:
    response = client.post(server.graphql_url, content=body, headers=HEADERS)
    if response.status_code != httpx.codes.OK:
        raise VerificationError(f"the {server.name} server answered {response.status_code}: {response.text[:1000]}")
    payload = orjson.loads(response.content)
    if not isinstance(payload, dict) or payload.get("errors") or payload.get("data") is None:
        raise VerificationError(f"the {server.name} server answered with errors: {response.text[:1000]}")
    return response.content, payload


def verify_same_json(real: Server, reference: Server, product_ids: list[int]) -> Verification:
    """Send TopProducts and ProductById for some products to both servers; fail on any difference."""
    operations = {operation.name: operation for operation in OPERATIONS}
    checked = list(dict.fromkeys(product_ids))[:PRODUCTS_CHECKED]
    bodies = [(TOP_PRODUCTS, operations[TOP_PRODUCTS].body())]
    bodies += [
        (f"{PRODUCT_BY_ID} {pk}", operations[PRODUCT_BY_ID].body({"id": global_id("Product", pk)})) for pk in checked
    ]
    identical = 0
    with httpx.Client(timeout=30.0) as client:
        for label, body in bodies:
            real_raw, real_json = _post(client, real, body)
            reference_raw, reference_json = _post(client, reference, body)
            # The app also reports extensions.cost, which a raw reference has no reason to compute.
            difference = first_difference(real_json["data"], reference_json["data"])
            if difference is not None:
                raise VerificationError(f"{label}: the reference does not answer like the real server at {difference}")
            identical += real_raw == reference_raw
            _check_shape(label, real_json["data"])
    return Verification(requests=len(bodies), byte_identical=identical)


def _check_shape(label: str, data: dict[str, Any]) -> None:
    if label == TOP_PRODUCTS:
        edges = data["products"]["edges"]
        if len(edges) != TOP_PRODUCTS_PAGE_SIZE:
            raise VerificationError(f"TopProducts returned {len(edges)} products, not {TOP_PRODUCTS_PAGE_SIZE}")
    elif data.get("node") is None:
        raise VerificationError(f"{label}: the real server returned no product for a published product id")
