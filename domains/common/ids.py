"""Global ids: opaque base64 of `Type:pk`, the format Strawberry's relay.Node emits."""

import base64
import binascii
import re
from binascii import b2a_base64

from domains.common.exceptions import BadUserInputError

_PAYLOAD = re.compile(r"(?P<type>[A-Z][A-Za-z0-9]*):(?P<pk>[1-9][0-9]{0,17})")
MALFORMED_ID = "The id is malformed."


def encode_global_id(type_name: str, pk: int) -> str:
    """Return the global id of a row (binascii's encoder: base64.b64encode is a Python call around it)."""
    return b2a_base64(f"{type_name}:{pk}".encode(), newline=False).decode("ascii")


def decode_global_id(value: str) -> tuple[str, int]:
    """Split a global id into its type name and primary key, refusing anything malformed."""
    try:
        payload = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise BadUserInputError(MALFORMED_ID) from exc
    match = _PAYLOAD.fullmatch(payload)
    if match is None:
        raise BadUserInputError(MALFORMED_ID)
    return match["type"], int(match["pk"])


def decode_typed_id(value: str, expected_type: str) -> int:
    """Return the primary key of a global id that must name `expected_type`."""
    type_name, pk = decode_global_id(value)
    if type_name != expected_type:
        msg = f"Expected the id of a {expected_type}, got the id of a {type_name}."
        raise BadUserInputError(msg)
    return pk
