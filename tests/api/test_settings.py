import pytest
from pydantic import ValidationError

from api.settings import AppEnv, Settings

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


def test_production_with_explicit_settings_turns_graphiql_and_introspection_off() -> None:
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
    assert not settings.introspection_enabled
