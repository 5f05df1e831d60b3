"""The gunicorn worker: uvicorn-worker's UvicornWorker, with a readiness drain before a graceful stop.

On SIGTERM the worker first turns `/health/ready` to 503 and keeps serving for
GUNICORN_DRAIN_SECONDS (default 5), so load balancers stop sending new traffic; then uvicorn
stops accepting connections and finishes the requests in flight. Gunicorn's graceful timeout
bounds the whole (keep drain + the longest request under it). A second SIGTERM or a SIGINT
skips the wait.
"""

import asyncio
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

from fastapi import FastAPI
from gunicorn.arbiter import Arbiter
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from api.observability import route_server_logs_to_root

DEFAULT_DRAIN_SECONDS = 5.0


class DrainingServer(Server):
    """A uvicorn Server that reports not-ready for a while before it starts its graceful shutdown."""

    def __init__(self, config: Config, *, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_seconds = drain_seconds
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._draining or self._drain_seconds <= 0 or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self._app.state.shutting_down = True  # /health/ready answers 503 from now on
        # A signal handler may only schedule work on the loop; the stop itself follows the drain.
        self._loop.call_soon_threadsafe(self._loop.call_later, self._drain_seconds, super().handle_exit, sig, None)


class StorefrontWorker(UvicornWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # UvicornWorker hands uvicorn's loggers to gunicorn's handlers; ours go through structlog.
        route_server_logs_to_root()

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        drain_seconds = float(os.environ.get("GUNICORN_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS))
        server = DrainingServer(config=self.config, app=self.wsgi, drain_seconds=drain_seconds)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
