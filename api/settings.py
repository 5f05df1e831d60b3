"""Application settings, read from the environment and validated at start-up."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal, Self, TypeAlias

from limits import parse, parse_many
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domains.common.principal import Role

DEFAULT_JWT_SECRET = "development-only-secret-change-me-in-production"  # noqa: S105 - refused in production
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./storefront.db"
MIN_JWT_SECRET_LENGTH = 32
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
Network: TypeAlias = IPv4Network | IPv6Network
EVERYONE: tuple[Network, ...] = (ip_network("0.0.0.0/0"), ip_network("::/0"))
LOOPBACK: tuple[Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
# Next.js / Create React App (3000) and Vite (5173) dev servers: CORS origins by default in development.
LOCAL_FRONTEND_ORIGINS = tuple(f"http://{host}:{port}" for host in ("localhost", "127.0.0.1") for port in (3000, 5173))


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service; environment variables use the upper-case field names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_env: AppEnv = AppEnv.DEVELOPMENT
    database_url: str | None = None
    redis_url: str | None = None
    jwt_secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    jwt_private_key: SecretStr | None = None
    jwt_key_id: str = "1"
    jwt_public_keys: dict[str, str] = Field(default_factory=dict)
    jwt_issuer: str = "storefront-graphql"
    jwt_audience: str = "storefront-graphql"
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30)
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    api_key_touch_interval_seconds: int = Field(default=60, ge=1)
    login_rate_limit: str = "5/minute"
    login_rate_limit_per_ip: str = "30/minute"
    login_rate_limit_per_email: str = "10/minute"
    redis_key_prefix: str = "storefront"
    redis_timeout_seconds: float = Field(default=0.5, gt=0)

    # Query limits (SPEC §5): checked before any resolver runs.
    query_max_tokens: int = Field(default=2000, ge=10)
    query_max_depth: int = Field(default=10, ge=1)
    query_max_aliases: int = Field(default=30, ge=0)
    query_max_field_repeats: int = Field(default=25, ge=1)
    # graphql-core's budget for comparing fields that share a response name (its default is 500,000).
    query_max_validation_work: int = Field(default=20_000, ge=1000)
    query_max_page_size: int = Field(default=100, ge=1, le=100)
    query_max_cost: int = Field(default=5000, ge=1)
    query_mutation_cost: int = Field(default=10, ge=0)
    query_cost_weights: dict[str, int] = Field(default_factory=dict)
    operation_timeout_seconds: float = Field(default=10.0, gt=0)
    # Budgets per client, in fixed windows aligned to the clock ("20000/minute").
    cost_budget: str = "20000/minute"
    graphql_rate_limit: str = "600/minute"
    rate_limit_failure_mode: Literal["open", "closed"] = "open"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    outbox_relay_interval_seconds: float = Field(default=5.0, gt=0)
    # WebSocket (graphql-transport-ws): how long a socket may stay open without `connection_init`,
    # and whether the legacy `graphql-ws` sub-protocol (subscriptions-transport-ws) is also spoken.
    ws_connection_init_timeout_seconds: float = Field(default=5.0, gt=0)
    ws_legacy_protocol: bool = False
    ws_keepalive_seconds: float = Field(default=15.0, gt=0)
    ws_max_subscriptions: int = Field(default=20, ge=1)
    ws_max_connections: int = Field(default=1000, ge=1)
    # Events a subscriber may fall behind by before its subscription is ended (RATE_LIMITED).
    subscription_buffer: int = Field(default=256, ge=1)

    # Background work (README "Background work"): the task queue, its periodic jobs, outgoing webhooks.
    task_redrive_interval_seconds: int = Field(default=5, ge=1)
    task_redispatch_seconds: int = Field(default=60, ge=1)
    task_purge_interval_seconds: int = Field(default=3600, ge=1)
    # Jobs one worker process runs at once (a webhook attempt holds its slot up to WEBHOOK_TIMEOUT_SECONDS).
    task_concurrency: int = Field(default=50, ge=1)
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=10, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_disable_after_hours: float = Field(default=24.0, gt=0)
    # None: private and loopback webhook targets are allowed outside production only.
    webhook_allow_private_targets: bool | None = None
    # E-mails: unset SMTP_URL logs them and keeps them in `email_message` (development).
    smtp_url: SecretStr | None = None
    email_from: str = "Storefront <no-reply@localhost>"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    outbox_retention_days: int = Field(default=7, ge=1)
    webhook_delivery_retention_days: int = Field(default=30, ge=1)
    idempotency_key_retention_hours: int = Field(default=24, ge=1)

    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=30.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_pool_pre_ping: bool = True
    # A connection given back less than this long ago is lent without its ping (0: every checkout pings).
    db_pool_ping_idle_seconds: float = Field(default=1.0, ge=0)
    db_echo: bool = False
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)

    graphiql: bool | None = None
    # INTROSPECTION: true for every caller, false for none; unset: every caller in development, and in
    # production only users and API keys holding one of INTROSPECTION_ROLES (codegen, staff tooling).
    introspection: bool | None = None
    introspection_roles: Annotated[list[Role], NoDecode] = Field(default_factory=lambda: [Role.STAFF])
    # None: the usual local frontend dev servers in development (LOCAL_FRONTEND_ORIGINS), none in production.
    cors_origins: Annotated[list[str] | None, NoDecode] = None
    trusted_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    log_level: str = "INFO"

    # The HTTP edge (README "HTTP behaviour"). None means "the mode's default" (see the properties).
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    graphql_suggestions: bool | None = None
    # Compiled execution of queries (schema/compiled/); false is the kill switch: graphql-core runs everything.
    graphql_compiled: bool = True
    metrics_allowed_ips: Annotated[list[Network] | None, NoDecode] = None

    # Persisted operations (README "Persisted operations", api/persisted.py). APQ documents live in
    # Redis (renewed on each use) when REDIS_URL is set, else in an in-process LRU of this many bytes.
    apq_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    apq_cache_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    # A document larger than this is run but not kept (Redis is shared with the rate limits).
    apq_max_document_bytes: int = Field(default=32 * 1024, ge=256)
    # Only the manifest's documents run ({sha256 hex of the UTF-8 text: text}, read once at start-up,
    # which fails if it is missing or an entry does not hash). GraphiQL cannot work in this mode (it
    # sends free-form text), so it is off by default and GRAPHIQL=true is refused; introspection
    # runs only as a manifest document (codegen reads schema/schema.graphql instead). Without the
    # mode the manifest is optional, and its documents may still be named by `documentId`.
    trusted_documents_only: bool = False
    trusted_documents_manifest: Path = Path("examples/trusted-documents.json")

    @field_validator("cors_origins", "trusted_hosts", "trusted_proxies", "introspection_roles", mode="before")
    @classmethod
    def _parse_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("metrics_allowed_ips", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        # "10.0.0.0/8, 192.168.1.7": an address is a network of one; host bits in a CIDR are dropped.
        items = _split_csv(value)
        if isinstance(items, list):
            return [ip_network(item, strict=False) if isinstance(item, str) else item for item in items]
        return items

    @field_validator("jwt_private_key", mode="before")
    @classmethod
    def _unescape_pem(cls, value: object) -> object:
        # A PEM key in one environment variable usually arrives with its newlines written as \n.
        if isinstance(value, str):
            return value.replace("\\n", "\n").strip() or None
        return value

    @field_validator("jwt_public_keys", mode="after")
    @classmethod
    def _unescape_public_pems(cls, value: dict[str, str]) -> dict[str, str]:
        return {kid: pem.replace("\\n", "\n").strip() for kid, pem in value.items()}

    @field_validator("login_rate_limit", "login_rate_limit_per_ip", "login_rate_limit_per_email")
    @classmethod
    def _check_rate_limits(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            msg = f"{(info.field_name or '').upper()} must look like '5/minute' or '5/minute;50/hour' (got {value!r})"
            raise ValueError(msg) from exc
        return value

    @field_validator("cost_budget", "graphql_rate_limit")
    @classmethod
    def _check_single_rate(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse(value)
        except ValueError as exc:
            msg = f"{(info.field_name or '').upper()} must look like '20000/minute' (got {value!r})"
            raise ValueError(msg) from exc
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("smtp://", "smtps://")):
            msg = "SMTP_URL must start with smtp:// (STARTTLS when offered) or smtps:// (TLS from the start)"
            raise ValueError(msg)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        for prefix in ("postgresql://", "postgres://", "postgresql+asyncpg://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        for prefix in ("sqlite://", "sqlite+aiosqlite://"):
            if value.startswith(prefix):
                return "sqlite+aiosqlite://" + value.removeprefix(prefix)
        msg = (
            "DATABASE_URL must start with postgresql://, postgresql+asyncpg:// or "
            f"sqlite+aiosqlite:// (got a URL with scheme {value.split(':', 1)[0]!r})"
        )
        raise ValueError(msg)

    @model_validator(mode="after")
    def _enforce_production_rules(self) -> Self:
        if self.app_env is not AppEnv.PRODUCTION:
            return self
        problems = []
        if self.database_url is None:
            problems.append("DATABASE_URL must be set in production")
        secret = self.jwt_secret.get_secret_value()
        if self.jwt_private_key is None and (secret == DEFAULT_JWT_SECRET or len(secret) < MIN_JWT_SECRET_LENGTH):
            problems.append(
                f"JWT_SECRET must be set to a random value of at least {MIN_JWT_SECRET_LENGTH} characters "
                "in production (or configure JWT_PRIVATE_KEY for RS256)"
            )
        if not self.cors_origins or "*" in self.cors_origins:
            problems.append("CORS_ORIGINS must list explicit origins in production ('*' is refused)")
        if not self.trusted_hosts or "*" in self.trusted_hosts:
            problems.append("TRUSTED_HOSTS must list explicit host names in production ('*' is refused)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_free_form_paths_with_trusted_documents(self) -> Self:
        if self.trusted_documents_only and self.graphiql:
            msg = "GRAPHIQL cannot be on with TRUSTED_DOCUMENTS_ONLY: GraphiQL sends free-form queries"
            raise ValueError(msg)
        if self.trusted_documents_only and self.ws_legacy_protocol:
            msg = "WS_LEGACY_PROTOCOL cannot be on with TRUSTED_DOCUMENTS_ONLY: the legacy protocol runs any document"
            raise ValueError(msg)
        return self

    @property
    def webhook_private_targets_allowed(self) -> bool:
        """Whether webhook URLs may point at private and loopback addresses: by default, outside production only."""
        if self.webhook_allow_private_targets is None:
            return not self.is_production
        return self.webhook_allow_private_targets

    @property
    def allowed_origins(self) -> list[str]:
        """Origins whose pages may call the API from a browser (CORS)."""
        if self.cors_origins is not None:
            return self.cors_origins
        return [] if self.is_production else list(LOCAL_FRONTEND_ORIGINS)

    @property
    def is_production(self) -> bool:
        return self.app_env is AppEnv.PRODUCTION

    @property
    def effective_database_url(self) -> str:
        return self.database_url or DEFAULT_SQLITE_URL

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is not None:
            return self.graphiql
        return not self.is_production and not self.trusted_documents_only

    @property
    def introspection_enabled(self) -> bool:
        """Whether anyone may introspect the schema (see `introspection_roles` for whom)."""
        if self.introspection is not None:
            return self.introspection
        return not self.is_production or bool(self.introspection_roles)

    @property
    def introspection_allowed_roles(self) -> frozenset[Role] | None:
        """The roles a caller needs to introspect; None: every caller may."""
        if self.introspection is not None or not self.is_production:
            return None
        return frozenset(self.introspection_roles)

    @property
    def suggestions_enabled(self) -> bool:
        return self.graphql_suggestions if self.graphql_suggestions is not None else not self.is_production

    @property
    def metrics_networks(self) -> tuple[Network, ...]:
        if self.metrics_allowed_ips is not None:
            return tuple(self.metrics_allowed_ips)
        return LOOPBACK if self.is_production else EVERYONE


@lru_cache
def get_settings() -> Settings:
    """Return the process settings, read once."""
    return Settings()
