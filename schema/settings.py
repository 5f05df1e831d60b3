"""What the GraphQL layer reads of the app's settings.

The layer below the edge cannot import `api.settings`, so it states the settings it needs as a
protocol; the edge hands in its `Settings`, and mypy checks there that it fits.
"""

from collections.abc import Mapping
from typing import Literal, Protocol

from domains.common.principal import Role


class SchemaSettings(Protocol):
    @property
    def operation_timeout_seconds(self) -> float: ...

    @property
    def suggestions_enabled(self) -> bool: ...

    @property
    def query_max_tokens(self) -> int: ...

    @property
    def query_max_depth(self) -> int: ...

    @property
    def query_max_aliases(self) -> int: ...

    @property
    def query_max_field_repeats(self) -> int: ...

    @property
    def query_max_page_size(self) -> int: ...

    @property
    def query_max_cost(self) -> int: ...

    @property
    def query_mutation_cost(self) -> int: ...

    @property
    def query_cost_weights(self) -> Mapping[str, int]: ...

    @property
    def api_key_touch_interval_seconds(self) -> int: ...

    @property
    def webhook_private_targets_allowed(self) -> bool: ...

    @property
    def introspection_allowed_roles(self) -> frozenset[Role] | None: ...

    @property
    def graphql_compiled(self) -> bool: ...


class RateLimitSettings(Protocol):
    @property
    def rate_limit_failure_mode(self) -> Literal["open", "closed"]: ...

    @property
    def login_rate_limit(self) -> str: ...

    @property
    def login_rate_limit_per_ip(self) -> str: ...

    @property
    def login_rate_limit_per_email(self) -> str: ...

    @property
    def cost_budget(self) -> str: ...

    @property
    def graphql_rate_limit(self) -> str: ...
