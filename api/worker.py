"""The gunicorn worker: uvicorn-worker's UvicornWorker, with a readiness drain on SIGTERM and graceful recycling.

On SIGTERM the worker first turns `/health/ready` to 503 and keeps serving for
GUNICORN_DRAIN_SECONDS (default 5), so load balancers stop sending new traffic; then uvicorn
stops accepting connections and finishes the requests in flight. Gunicorn's graceful timeout
bounds the whole (keep drain + the longest request under it). A second SIGTERM or a SIGINT
skips the wait.

A worker also recycles itself: when its resident set passes GUNICORN_MAX_WORKER_MEMORY_MB
(checked every few seconds), or after GUNICORN_MAX_REQUESTS requests if that is set. uvicorn's
own max-requests exit closes idle keep-alive connections at once, and a request a client is
sending on one at that moment is lost. Instead the worker
1. stops accepting: with one listening socket per worker (SO_REUSEPORT, gunicorn.conf.py) it
   closes its own, after taking over the connections already queued on it (closing a listening
   socket resets those), so the kernel sends new ones to the other workers' sockets. It waits
   while its socket is the last one listening on the port (another worker recycling, its
   replacement not bound yet): nothing would accept meanwhile, and clients would be refused.
   With the shared socket it closes its copy and the other workers go on accepting from it;
2. answers every further request on its open connections with `Connection: close`, so each
   client reconnects, to another worker, instead of racing a close;
3. leaves idle connections to their own keep-alive timeout, so none is closed sooner than it
   would have been anyway (at most half the graceful timeout);
4. then shuts down as uvicorn does: closes what is still idle, gives the requests in flight the
   rest of the graceful timeout, and exits; the arbiter forks a replacement.
Readiness stays 200 meanwhile: the instance as a whole keeps serving.

With GUNICORN_REQUEST_COUNTS_DIR set (the benchmark sets it), a worker writes the number of
requests it has served to `<dir>/<pid>` twice a second and when it exits: how the load spread
over the workers.
"""

import asyncio
import errno
import fcntl
import os
import resource
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import structlog
from fastapi import FastAPI
from gunicorn.arbiter import Arbiter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from api.observability import route_server_logs_to_root
from api.settings import get_settings

DEFAULT_DRAIN_SECONDS = 5.0
# Worker RSS is about 130 MiB at the benchmark's peak: four times that is a leak, not a load.
DEFAULT_MAX_WORKER_MEMORY_MB = 512.0
MEMORY_CHECK_SECONDS = 5.0
COUNT_EVERY_TICKS = 5  # uvicorn ticks every 0.1 s
MIB = 1024 * 1024

logger = structlog.get_logger("api.worker")


def resident_set_mib() -> float:
    """This process's resident set now: one read of /proc/self/statm, or the peak where there is no /proc."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
        return peak / (MIB if sys.platform == "darwin" else 1024)
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MIB


class ConnectionCloser:
    """Pure ASGI: once `closing` is set, every response tells its client to close the connection.

    uvicorn closes a connection after a response that says `Connection: close`, and the client
    opens a new one for its next request: a clean hand-over, where closing an idle keep-alive
    connection races whatever request the client is already sending on it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.closing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            # Read when the response starts: a request in flight when recycling begins closes too.
            if self.closing and message["type"] == "http.response.start":
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_closing)


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
        # /health/ready answers 503 from now on (the bench's raw reference app has no state to tell).
        state = getattr(self._app, "state", None)
        if state is not None:
            state.shutting_down = True
        # A signal handler may only schedule work on the loop; the stop itself follows the drain.
        self._loop.call_soon_threadsafe(self._loop.call_later, self._drain_seconds, super().handle_exit, sig, None)


@dataclass(frozen=True, slots=True)
class RecyclePolicy:
    max_requests: int | None  # gunicorn's max_requests plus this worker's jitter; None: never
    max_memory_mib: float  # 0: never
    graceful_timeout: float  # bounds the whole recycle, as it bounds a SIGTERM


def _queued_connections(listener: socket.socket) -> list[socket.socket]:
    """Accept every connection waiting on a listening socket, without blocking."""
    listener.setblocking(False)
    accepted: list[socket.socket] = []
    while True:
        try:
            connection, _address = listener.accept()
        except ConnectionAbortedError:  # reset by its client while it waited: the next one
            continue
        except OSError:  # BlockingIOError: none left
            return accepted
        connection.setblocking(False)
        accepted.append(connection)


def _listening_inodes(port: int) -> set[int] | None:
    """The inodes of every socket listening on this TCP port (/proc/net/tcp{,6}); None without /proc."""
    inodes = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # st 0A is LISTEN; local_address is ADDRESS:PORT in hex
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(int(fields[9]))
    except OSError:
        return None
    return inodes


class ListenerLock:
    """A POSIX record lock the workers of one arbiter share, held while one decides to stop listening.

    It makes "is my socket the last one listening on the port?" and the close that follows one step
    among the workers. Opened in the arbiter (`StorefrontWorker.check_config`), inherited by every
    forked worker: a record lock belongs to the process holding it, so two workers exclude each
    other through the same file. Without it, two workers recycling at once could each see the other
    still listening, and both close: nothing would accept until the arbiter's replacements bind.
    """

    _file: IO[bytes] | None = None

    @classmethod
    def open(cls) -> None:
        if cls._file is None:
            cls._file = tempfile.TemporaryFile()  # noqa: SIM115 - held for the arbiter's lifetime

    @classmethod
    @contextmanager
    def attempt(cls) -> Iterator[bool]:
        """Hold the lock for the block and give True; give False at once while another worker holds it.

        Never waits: the worker asks from its event loop, and tries again at its next tick.
        """
        if cls._file is None:  # not opened by an arbiter: no other worker to exclude
            yield True
            return
        try:
            fcntl.lockf(cls._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):  # POSIX allows either for "held elsewhere"
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(cls._file, fcntl.LOCK_UN)


def _is_own_listener(fd: int) -> bool:
    # SO_REUSEPORT: this worker's own socket (gunicorn.conf.py's reuse_port); without it, the shared one.
    with socket.socket(fileno=os.dup(fd)) as probe:
        return bool(probe.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


class RecyclingServer(DrainingServer):
    """A DrainingServer that recycles its worker (request count, memory ceiling) without losing a request."""

    def __init__(
        self,
        config: Config,
        *,
        app: FastAPI,
        drain_seconds: float,
        closer: ConnectionCloser,
        policy: RecyclePolicy,
        counts_path: Path | None = None,
    ) -> None:
        super().__init__(config, app=app, drain_seconds=drain_seconds)
        self._closer = closer
        self._policy = policy
        self._counts_path = counts_path
        # Never sooner than the keep-alive timeout would close an idle connection anyway.
        self._idle_grace = min(float(config.timeout_keep_alive), policy.graceful_timeout / 2)
        self._next_memory_check = time.monotonic() + MEMORY_CHECK_SECONDS
        self._recycle_started: float | None = None
        # The reason, while this worker cannot stop accepting yet (its socket is the last one, or
        # another worker holds the ListenerLock): tried again at every tick.
        self._recycle_pending: str | None = None

    async def on_tick(self, counter: int) -> bool:
        # uvicorn's tick (every 0.1 s): the Date header, the arbiter's heartbeat, a signalled exit.
        if self._counts_path is not None and counter % COUNT_EVERY_TICKS == 0:
            self.write_request_count()
        if await super().on_tick(counter):
            return True
        if self._recycle_started is None:
            # Once SIGTERM drains the worker it stops anyway, and must keep accepting until then.
            if not self._draining:
                self._recycle_pending = self._recycle_pending or self._recycle_reason()
                if self._recycle_pending is not None:
                    await self._start_recycle(self._recycle_pending)
            return False
        return self._recycle_drained(since=self._recycle_started)

    def _recycle_reason(self) -> str | None:
        max_requests = self._policy.max_requests
        if max_requests is not None and self.server_state.total_requests >= max_requests:
            return "max_requests"
        now = time.monotonic()
        if self._policy.max_memory_mib > 0 and now >= self._next_memory_check:
            self._next_memory_check = now + MEMORY_CHECK_SECONDS
            if resident_set_mib() > self._policy.max_memory_mib:
                return "memory"
        return None

    def write_request_count(self) -> None:
        """Write the requests served so far to GUNICORN_REQUEST_COUNTS_DIR/<pid> (when that is set)."""
        if self._counts_path is not None:
            # Replaced whole, so a reader never sees a half-written file.
            partial = self._counts_path.with_name(f".{self._counts_path.name}")
            partial.write_text(f"{self.server_state.total_requests}\n")
            partial.replace(self._counts_path)

    async def _start_recycle(self, reason: str) -> None:
        """Stop accepting and start the hand-over; or nothing yet, while this worker cannot stop accepting."""
        queued = self._stop_accepting()
        if queued is None:
            return
        self._recycle_pending = None
        log = logger.warning if reason == "memory" else logger.info  # a memory ceiling reached hints at a leak
        log(
            "worker recycling",
            reason=reason,
            rss_mib=round(resident_set_mib(), 1),
            requests=self.server_state.total_requests,
            max_requests=self._policy.max_requests,
            max_memory_mib=self._policy.max_memory_mib,
        )
        self._recycle_started = time.monotonic()
        self._closer.closing = True  # before the queued connections are served: their answers say close too
        loop = asyncio.get_running_loop()
        for connection in queued:
            await loop.connect_accepted_socket(self._protocol, connection)

    def _stop_accepting(self) -> list[socket.socket] | None:
        """Close this process's listening sockets; return the connections that were queued on its own ones.

        None, and nothing closed, when one of its own (SO_REUSEPORT) sockets is the last listening on its
        port, or while another worker holds the ListenerLock: the next tick (0.1 s) tries again.
        """
        with ListenerLock.attempt() as acquired:
            if not acquired:
                return None
            fds = [sock.fileno() for server in self.servers for sock in server.sockets or ()]
            own_fds = [fd for fd in fds if _is_own_listener(fd)]
            for fd in own_fds:
                port = socket.socket(fileno=os.dup(fd))
                with port:
                    listening = _listening_inodes(port.getsockname()[1])
                if listening is not None and not listening - {os.fstat(fd).st_ino}:
                    return None
            # A duplicate keeps an own socket open past the server's close, to empty its queue.
            own = [socket.socket(fileno=os.dup(fd)) for fd in own_fds]
            for server in self.servers:
                server.close()  # with the shared socket, this process's copy only: the other workers keep theirs
            queued: list[socket.socket] = []
            for listener in own:
                # No await between the last accept and the close: a connection can only be lost in between.
                # Under the lock: until the close, another worker would still count this socket as listening.
                queued += _queued_connections(listener)
                listener.close()
        return queued

    def _protocol(self) -> asyncio.Protocol:
        # What uvicorn's Server.startup hands to create_server, for a connection accepted here.
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol

    def _recycle_drained(self, since: float) -> bool:
        elapsed = time.monotonic() - since
        if self.server_state.connections and elapsed < self._idle_grace:
            return False
        # uvicorn's shutdown follows: it closes the idle connections left, and waits this long for the rest.
        self.config.timeout_graceful_shutdown = max(int(self._policy.graceful_timeout - elapsed), 1)
        return True


def _python_sockets(listeners: list[Any]) -> list[socket.socket]:
    """The socket.socket inside each of gunicorn's listeners (gunicorn.sock.BaseSocket wraps one).

    uvloop's create_server(sock=) closes the descriptor itself when its server closes, then closes the
    object it was given: a socket.socket it detaches instead, but a wrapper it calls close() on, and
    BaseSocket.close() closes the descriptor a second time and logs "Error while closing socket
    [Errno 9] Bad file descriptor", at every recycle and every shutdown. Given the sockets themselves,
    the close is uvloop's alone (uvicorn's own close after it, in Server.shutdown, is then a no-op).
    """
    return [getattr(listener, "sock", listener) for listener in listeners]


class StorefrontWorker(UvicornWorker):
    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        # Called in the arbiter before it forks any worker: the lock file is then every worker's.
        ListenerLock.open()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # UvicornWorker hands uvicorn's loggers to gunicorn's handlers; ours go through structlog.
        route_server_logs_to_root()
        # uvicorn's own max-requests exit drops idle keep-alive connections: RecyclingServer recycles instead.
        self.config.limit_max_requests = None
        # X-Forwarded-For is the app's to judge (TRUSTED_PROXIES), the same under gunicorn and `make run`.
        self.config.proxy_headers = False
        # uvicorn would buffer WebSocket messages up to 16 MiB before the app could refuse them.
        self.config.ws_max_size = get_settings().max_body_bytes

    def _recycle_policy(self) -> RecyclePolicy:
        return RecyclePolicy(
            max_requests=self.max_requests if self.cfg.max_requests > 0 else None,
            max_memory_mib=float(os.environ.get("GUNICORN_MAX_WORKER_MEMORY_MB", DEFAULT_MAX_WORKER_MEMORY_MB)),
            graceful_timeout=float(self.cfg.graceful_timeout),
        )

    async def _serve(self) -> None:
        closer = ConnectionCloser(self.wsgi)
        self.config.app = closer
        counts_dir = os.environ.get("GUNICORN_REQUEST_COUNTS_DIR")
        server = RecyclingServer(
            config=self.config,
            closer=closer,
            policy=self._recycle_policy(),
            app=self.wsgi,
            drain_seconds=float(os.environ.get("GUNICORN_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS)),
            counts_path=Path(counts_dir) / str(os.getpid()) if counts_dir else None,
        )
        self._install_sigquit_handler()
        try:
            await server.serve(sockets=_python_sockets(self.sockets))
        finally:
            server.write_request_count()
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
