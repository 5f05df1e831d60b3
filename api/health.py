"""Liveness and readiness probes: the only REST routes besides /metrics."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Liveness: the process runs and serves."""
    return {"status": "ok"}


async def _check_database(request: Request) -> None:
    # Autocommit: a probe needs no transaction (on SQLite one would take the write lock).
    async with request.app.state.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("SELECT 1"))


@router.get("/health/ready", include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    """Readiness: the database (and Redis, when configured) answer and the process is not shutting down."""
    checks: dict[str, Any] = {}
    if getattr(request.app.state, "shutting_down", False):
        checks["shutdown"] = "in progress"
    try:
        await _check_database(request)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    if request.app.state.redis is not None:
        try:
            await request.app.state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
    failing = [name for name, value in checks.items() if value != "ok"]
    status = "ok" if not failing else "unavailable"
    return JSONResponse({"status": status, "checks": checks, "failing": failing}, status_code=503 if failing else 200)
