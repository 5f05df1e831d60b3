from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from api.app import create_app
from api.settings import Settings


async def test_health_answers_while_the_process_runs(client: AsyncClient) -> None:
    # when
    response = await client.get("/health")

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_the_database_and_redis_when_configured(client: AsyncClient, settings: Settings) -> None:
    # when
    response = await client.get("/health/ready")

    # then
    expected = {"database": "ok", "redis": "ok"} if settings.redis_url else {"database": "ok"}
    assert response.status_code == 200
    assert response.json()["checks"] == expected


async def test_ready_is_503_naming_the_database_when_it_does_not_answer() -> None:
    # given: a server that refuses connections
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none", db_pool_timeout=2, _env_file=None)
    app: FastAPI = create_app(settings)

    # when
    async with LifespanManager(app), AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/health/ready")

    # then
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["database"].startswith("failed")


async def test_ready_is_503_while_shutting_down(app: FastAPI, client: AsyncClient) -> None:
    # given
    app.state.shutting_down = True

    # when
    response = await client.get("/health/ready")

    # then
    assert response.status_code == 503
    assert "shutdown" in response.json()["failing"]
