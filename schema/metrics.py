"""The GraphQL layer's metrics: operations, errors, cost, limits, timeouts, loaders and the pool's waits.

Defined here, below the edge, so the extensions and loaders that count them import nothing upward;
`api.metrics` serves every registered series at /metrics. Labels stay low-cardinality: an
operation is labelled by its name only if it is a plain identifier among the first
MAX_OPERATION_NAMES seen, otherwise "other"; unnamed operations are "anonymous".
"""

import re

from prometheus_client import Counter, Gauge, Histogram

MAX_OPERATION_NAMES = 200
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_seen_names: set[str] = set()

GRAPHQL_OPERATIONS = Counter(
    "graphql_operations_total", "GraphQL operations by name, type and outcome.", ["operation", "type", "outcome"]
)
GRAPHQL_DURATION = Histogram(
    "graphql_operation_duration_seconds",
    "Time to execute a GraphQL operation.",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRAPHQL_ERRORS = Counter("graphql_errors_total", "GraphQL errors by extensions.code.", ["code"])
RATE_LIMIT_REFUSALS = Counter("rate_limit_refusals_total", "Requests refused by a rate limit.", ["limit"])
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "rate_limit_storage_errors_total", "Rate-limit checks the store could not answer (Redis down).", ["limit"]
)
GRAPHQL_COST = Histogram(
    "graphql_operation_cost", "Static cost of admitted operations.", buckets=(0, 1, 10, 50, 100, 500, 1000, 2500, 5000)
)
OPERATION_TIMEOUTS = Counter("graphql_operation_timeouts_total", "Operations cancelled at the wall-clock ceiling.")
DB_POOL_TIMEOUTS = Counter("db_pool_timeouts_total", "Requests that waited too long for a pooled connection.")
DB_UNAVAILABLE = Counter(
    "db_unavailable_total", "Database work answered SERVICE_UNAVAILABLE, by the database's state.", ["state"]
)
LOADER_BATCH_SIZE = Histogram(
    "dataloader_batch_size", "Keys per dataloader batch.", ["loader"], buckets=(1, 2, 5, 10, 20, 50, 100, 250)
)

WEBSOCKETS_OPEN = Gauge("graphql_websockets_open", "Open GraphQL WebSocket connections.", multiprocess_mode="livesum")
SUBSCRIPTIONS_ACTIVE = Gauge(
    "graphql_subscriptions_active", "Subscriptions waiting for events.", multiprocess_mode="livesum"
)
EVENTS_DELIVERED = Counter("graphql_subscription_events_delivered_total", "Events handed to a subscription.")
EVENTS_DROPPED = Counter(
    "graphql_subscription_events_dropped_total", "Events a subscription missed: its queue was full and it was ended."
)


def operation_label(name: str | None) -> str:
    """Return the metric label of an operation name, keeping the label set small and safe."""
    if not name:
        return "anonymous"
    if not _OPERATION_NAME.fullmatch(name):
        return "other"
    if name not in _seen_names and len(_seen_names) >= MAX_OPERATION_NAMES:
        return "other"
    _seen_names.add(name)
    return name
