"""Global ids: the schema's encoder keeps the ids it served lately, within a bound."""

from domains.common.ids import decode_global_id, encode_global_id
from schema.products.types import Product, Review
from schema.relay import node


def test_kept_ids_are_the_encoders_and_the_cache_stays_bounded() -> None:
    pks = range(1, 2 * node.IDS_KEPT + 1)
    for pk in pks:
        assert Review.global_id(pk) == encode_global_id("Review", pk)
    # Read again: the same strings, and each type keeps its own (a Review's pk is not a Product's id).
    assert Review.global_id(pks[-1]) == encode_global_id("Review", pks[-1])
    assert decode_global_id(Product.global_id(pks[-1])) == ("Product", pks[-1])
    kept = node._encode_id.cache_info()  # type: ignore[attr-defined]
    assert kept.hits >= 1
    assert kept.currsize <= node.IDS_KEPT == kept.maxsize
