import os
import subprocess
import sys
from ipaddress import ip_network
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.auth.principal import build_token_issuer
from api.settings import EVERYONE, LOOPBACK, AppEnv, Settings
from domains.common.principal import Role

ROOT = Path(__file__).resolve().parents[2]

STRONG_SECRET = "x" * 48


def test_a_bad_database_url_names_the_variable_and_the_reason() -> None:
    # when
    with pytest.raises(ValidationError) as excinfo:
        Settings(database_url="mysql://root@localhost/db", _env_file=None)

    # then
    message = str(excinfo.value)
    assert "DATABASE_URL" in message
    assert "'mysql'" in message


def test_postgres_urls_are_normalised_to_asyncpg() -> None:
    # when
    settings = Settings(database_url="postgresql://u@h/db", _env_file=None)

    # then
    assert settings.effective_database_url == "postgresql+asyncpg://u@h/db"


def test_development_defaults_to_embedded_sqlite() -> None:
    # when
    settings = Settings(_env_file=None)

    # then
    assert settings.is_sqlite
    assert settings.graphiql_enabled


def test_production_refuses_the_default_jwt_secret_naming_the_variable() -> None:
    # when
    with pytest.raises(ValidationError) as excinfo:
        Settings(
            app_env=AppEnv.PRODUCTION,
            database_url="postgresql://u@h/db",
            cors_origins=["https://shop.example.com"],
            trusted_hosts=["api.example.com"],
            _env_file=None,
        )

    # then
    assert "JWT_SECRET" in str(excinfo.value)


def test_production_refuses_wildcard_cors_and_missing_database() -> None:
    # when
    with pytest.raises(ValidationError) as excinfo:
        Settings(app_env=AppEnv.PRODUCTION, jwt_secret=STRONG_SECRET, cors_origins="*", _env_file=None)

    # then
    message = str(excinfo.value)
    assert "DATABASE_URL" in message
    assert "CORS_ORIGINS" in message
    assert "TRUSTED_HOSTS" in message


def test_production_with_explicit_settings_keeps_graphiql_off_and_introspection_to_staff() -> None:
    # when
    settings = Settings(
        app_env=AppEnv.PRODUCTION,
        database_url="postgresql://u@h/db",
        jwt_secret=STRONG_SECRET,
        cors_origins="https://shop.example.com",
        trusted_hosts="api.example.com",
        _env_file=None,
    )

    # then
    assert settings.cors_origins == ["https://shop.example.com"]
    assert not settings.graphiql_enabled
    assert settings.introspection_allowed_roles == frozenset({Role.STAFF})
    assert settings.model_copy(update={"introspection_roles": []}).introspection_allowed_roles == frozenset()
    assert Settings(introspection_roles="ADMIN, STAFF", _env_file=None).introspection_roles == [Role.ADMIN, Role.STAFF]


@pytest.mark.parametrize("secret", [None, "short-but-not-default"], ids=["default", "short"])
def test_production_start_up_refuses_a_default_or_short_jwt_secret(secret: str | None) -> None:
    # given: the environment of a production deployment, but for the secret
    env = {
        "PATH": os.environ["PATH"],
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://u@h/db",
        "CORS_ORIGINS": "https://shop.example.com",
        "TRUSTED_HOSTS": "api.example.com",
    } | ({"JWT_SECRET": secret} if secret else {})

    # when: the app factory runs, as gunicorn and uvicorn run it
    result = subprocess.run(
        [sys.executable, "-c", "from api.app import create_app; create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then
    assert result.returncode != 0
    assert "JWT_SECRET must be set" in result.stderr


def test_production_accepts_an_rs256_key_pair_instead_of_a_secret() -> None:
    # when
    settings = Settings(
        app_env=AppEnv.PRODUCTION,
        database_url="postgresql://u@h/db",
        jwt_private_key="-----BEGIN PRIVATE KEY-----\\nMII...\\n-----END PRIVATE KEY-----",
        cors_origins="https://shop.example.com",
        trusted_hosts="api.example.com",
        _env_file=None,
    )

    # then: the escaped newlines of a one-line environment variable are restored
    assert settings.jwt_private_key is not None
    assert settings.jwt_private_key.get_secret_value().count("\n") == 2


def test_an_unreadable_private_key_is_refused_at_start_up_naming_the_variable() -> None:
    # given
    settings = Settings(jwt_private_key="not a pem", _env_file=None)

    # when
    with pytest.raises(ValueError, match="JWT_PRIVATE_KEY"):
        build_token_issuer(settings)


def test_a_malformed_login_rate_limit_names_the_variable() -> None:
    # when
    with pytest.raises(ValidationError, match="LOGIN_RATE_LIMIT"):
        Settings(login_rate_limit="five a minute", _env_file=None)


def test_the_http_edge_defaults_follow_the_mode() -> None:
    # when
    development = Settings(_env_file=None)
    production = Settings(
        app_env=AppEnv.PRODUCTION,
        database_url="postgresql://u@h/db",
        jwt_secret=STRONG_SECRET,
        cors_origins="https://shop.example.com",
        trusted_hosts="api.example.com",
        _env_file=None,
    )

    # then
    assert development.max_body_bytes == production.max_body_bytes == 1024 * 1024
    assert (development.suggestions_enabled, production.suggestions_enabled) == (True, False)
    assert development.metrics_networks == EVERYONE
    assert production.metrics_networks == LOOPBACK


def test_metrics_allowed_ips_reads_networks_and_single_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    # given
    monkeypatch.setenv("METRICS_ALLOWED_IPS", "10.0.0.0/8, 192.168.1.7 ,fd00::/8")

    # when
    settings = Settings(_env_file=None)

    # then
    assert settings.metrics_networks == (
        ip_network("10.0.0.0/8"),
        ip_network("192.168.1.7/32"),
        ip_network("fd00::/8"),
    )


def test_an_empty_metrics_allowed_ips_allows_nobody_and_a_bad_one_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given
    monkeypatch.setenv("METRICS_ALLOWED_IPS", "")

    # when
    nobody = Settings(_env_file=None)
    monkeypatch.setenv("METRICS_ALLOWED_IPS", "10.0.0.0/8,everyone")
    with pytest.raises(ValidationError, match="metrics_allowed_ips") as excinfo:
        Settings(_env_file=None)

    # then
    assert nobody.metrics_networks == ()
    assert "'everyone'" in str(excinfo.value)
