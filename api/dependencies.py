"""The request's unit of work as a FastAPI dependency: opened per request or WebSocket, always closed."""

from collections.abc import AsyncIterator

from starlette.requests import HTTPConnection

from schema.unit_of_work import RequestDb


async def get_request_db(connection: HTTPConnection) -> AsyncIterator[RequestDb]:
    """Open the request's (or WebSocket's) session and always close it, also when a resolver raised."""
    state = connection.app.state
    db = RequestDb(state.sessionmaker(), on_commit=state.after_commit)
    try:
        yield db
    finally:
        await db.close()
