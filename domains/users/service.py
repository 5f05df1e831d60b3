"""Use cases and rules about users."""

from domains.common.principal import Principal


def can_view_private_fields(principal: Principal, user_id: int) -> bool:
    """Tell whether the principal may see a user's e-mail, roles and orders: the user or staff."""
    return principal.user_id == user_id or principal.is_staff
