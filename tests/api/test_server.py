"""The app behind a real uvicorn process on a loopback port, as `make run` serves it."""

import asyncio
import os
import signal
import socket
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings
from tests.conftest import ROOT
from tests.factories import create_product

STARTUP_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[tuple[str, Process]]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": settings.effective_database_url, "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port)),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(STARTUP_SECONDS * 10):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the server did not start")
        yield base, process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_real_server_answers_a_catalog_query_and_stops_cleanly(
    server: tuple[str, Process], db_session: AsyncSession
) -> None:
    # given
    base, process = server
    await create_product(db_session, name="Teapot")
    await db_session.commit()

    # when
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ products { totalCount nodes { name price { amount } } } }"},
            headers={"X-Request-ID": "real-1"},
        )
        ready = await client.get("/health/ready")
    process.send_signal(signal.SIGINT)
    code = await asyncio.wait_for(process.wait(), 15)

    # then
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "real-1"
    assert response.json() == {
        "data": {"products": {"totalCount": 1, "nodes": [{"name": "Teapot", "price": {"amount": "10.00"}}]}}
    }
    assert ready.status_code == 200
    assert code == 0
    assert process.stderr is not None
    assert b"Traceback" not in await process.stderr.read()
