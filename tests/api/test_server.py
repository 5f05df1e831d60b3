"""The app behind a real uvicorn process on a loopback port, as `make run` serves it."""

import asyncio
import signal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_product
from tests.servers import Uvicorn


async def test_real_server_answers_a_catalog_query_and_stops_cleanly(
    live_server: Uvicorn, db_session: AsyncSession
) -> None:
    # given
    base, process = live_server.url, live_server.process
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
    assert response.json()["data"] == {
        "products": {"totalCount": 1, "nodes": [{"name": "Teapot", "price": {"amount": "10.00"}}]}
    }
    assert response.json()["extensions"]["cost"]["requested"] == 1 + 1 + 20 * (1 + 1)  # totalCount, price
    assert ready.status_code == 200
    assert code == 0
    assert live_server.log is not None
    assert b"Traceback" not in live_server.log.read_bytes()
