"""The app's Redis client: a burst larger than its pool waits for a connection instead of failing."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from api.app import REDIS_MAX_CONNECTIONS, create_app
from api.settings import Settings


@pytest.fixture
async def redis_app(redis_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(redis_settings)
    async with LifespanManager(application):
        yield application


async def test_a_burst_of_redis_commands_beyond_the_pool_all_succeed(redis_app: FastAPI) -> None:
    # given
    redis: Redis = redis_app.state.redis
    burst = 3 * REDIS_MAX_CONNECTIONS

    # when: more concurrent commands than connections, each holding its connection for a moment,
    # as the sign-in limit's counting script does under a flood of sign-ins
    answers = await asyncio.gather(
        *(redis.eval("redis.call('ping') return 1", 0) for _ in range(burst)), return_exceptions=True
    )

    # then: redis-py's default pool would refuse the ones past its 100 connections
    assert [answer for answer in answers if answer != 1] == []
    assert isinstance(redis.connection_pool, BlockingConnectionPool)
