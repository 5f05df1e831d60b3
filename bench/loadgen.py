"""Drive a server with wrk, parse its report, and watch the server's processes meanwhile."""

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import LUA_DIR, BenchConfig
from bench.operations import TOP_PRODUCTS
from bench.procs import KIB, machine_cpu_s, memory_kib, postgres_backends, read_stat, tree_cpu_s
from bench.servers import Server

SAMPLE_INTERVAL_S = 0.5
COUNTS_SETTLE_S = 0.7  # a worker writes its request count every 0.5 s (api/worker.py)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    """wrk failed or printed something the bench cannot read."""


@dataclass(frozen=True, slots=True)
class WrkReport:
    """What wrk measured."""

    requests_per_s: float
    requests: int
    duration_s: float
    latency_ms: dict[str, float]  # "p50", "p75", "p90", "p99"
    socket_errors: int
    non_2xx: int


def parse_wrk(output: str) -> WrkReport:
    """Read requests/s, the latency distribution (--latency) and the error counts of a wrk report."""
    rps, total = _RPS.search(output), _TOTAL.search(output)
    percentiles = {f"p{m[1]}": float(m[2]) * _UNITS_MS[m[3]] for m in _PERCENTILE.finditer(output)}
    if rps is None or total is None or set(percentiles) != {"p50", "p75", "p90", "p99"}:
        raise WrkError(f"cannot read this wrk report:\n{output}")
    errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkReport(
        requests_per_s=float(rps[1]),
        requests=int(total[1]),
        duration_s=float(total[2]) * _UNITS_MS[total[3]] / 1000,
        latency_ms=percentiles,
        socket_errors=sum(int(value) for value in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
    )


@dataclass
class _Samples:
    worker_pids: set[int] = field(default_factory=set)
    peak_rss_kib: int = 0
    backend_first: dict[int, float] = field(default_factory=dict)
    backend_last: dict[int, float] = field(default_factory=dict)
    worker_cpu_first: dict[int, float] = field(default_factory=dict)
    worker_cpu_last: dict[int, float] = field(default_factory=dict)


class ProcessWatcher:
    """Samples a server's workers (memory, recycling) and the database's backends (CPU) during a run."""

    def __init__(self, server: Server, database: str) -> None:
        self._server = server
        self._database = database
        self._samples = _Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{server.name}", daemon=True)
        self._start_workers: set[int] = set()
        self._start_tree_cpu = 0.0
        self._start_machine = (0.0, 0.0)
        self._start_counts: dict[int, int] = {}

    def __enter__(self) -> "ProcessWatcher":
        self._start_workers = set(self._server.workers())
        self._start_counts = self._server.request_counts()
        self._sample(first=True)
        self._start_tree_cpu = tree_cpu_s(self._server.master_pid)
        self._start_machine = machine_cpu_s()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sample(first=False)

    def _sample(self, *, first: bool) -> None:
        samples = self._samples
        for pid in self._server.workers():
            samples.worker_pids.add(pid)
            memory = memory_kib(pid)
            if memory is not None:
                samples.peak_rss_kib = max(samples.peak_rss_kib, memory[1])  # VmHWM: the process's peak
            stat = read_stat(pid)
            if stat is not None:
                samples.worker_cpu_first.setdefault(pid, stat.cpu_s if first else 0.0)
                samples.worker_cpu_last[pid] = stat.cpu_s
        for pid, cpu in postgres_backends(self._database).items():
            # A backend first seen mid-run was started mid-run: all its CPU time belongs to the run.
            samples.backend_first.setdefault(pid, cpu if first else 0.0)
            samples.backend_last[pid] = cpu

    def result(self, requests: int) -> dict[str, Any]:
        """CPU per request (ms) of the server and of PostgreSQL, machine load, recycled workers, peak RSS.

        Also each worker's requests (from the counts the workers write) and CPU seconds during the run.
        """
        self._sample(first=False)
        samples = self._samples
        time.sleep(COUNTS_SETTLE_S)
        counts = self._server.request_counts()
        worker_requests = {
            str(pid): count - self._start_counts.get(pid, 0)
            for pid, count in sorted(counts.items())
            if count - self._start_counts.get(pid, 0) > 0
        }
        worker_cpu = {
            str(pid): round(samples.worker_cpu_last[pid] - samples.worker_cpu_first[pid], 2)
            for pid in sorted(samples.worker_cpu_last)
        }
        server_cpu = tree_cpu_s(self._server.master_pid) - self._start_tree_cpu
        postgres_cpu = sum(samples.backend_last[pid] - samples.backend_first[pid] for pid in samples.backend_last)
        busy, total = machine_cpu_s()
        machine_busy = (busy - self._start_machine[0]) / max(total - self._start_machine[1], 1e-9)
        per_request = 1000 / max(requests, 1)
        return {
            "server_cpu_ms_per_request": round(server_cpu * per_request, 3),
            "postgres_cpu_ms_per_request": round(postgres_cpu * per_request, 3),
            "machine_busy": round(machine_busy, 3),
            "workers_spawned": len(samples.worker_pids - self._start_workers),
            "peak_worker_rss_mib": round(samples.peak_rss_kib / KIB, 1),
            "worker_requests": worker_requests,
            "worker_cpu_s": worker_cpu,
            "max_worker_share": round(
                max(worker_requests.values(), default=0) / max(sum(worker_requests.values()), 1), 3
            ),
        }


@dataclass(frozen=True, slots=True)
class LoadFiles:
    """The request files the Lua scripts read, written once per bench run."""

    top_products_body: Path
    product_by_id_template: Path
    product_ids: Path


def wrk_command(
    config: BenchConfig, server: Server, operation: str, files: LoadFiles, *, connections: int, duration_s: int
) -> list[str]:
    """The wrk command line for one operation against one server."""
    base = [
        "wrk",
        f"-t{min(config.wrk_threads, connections)}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={config.wrk_timeout_s}s",
        "--latency",
    ]
    if operation == TOP_PRODUCTS:
        script = [str(LUA_DIR / "static_body.lua"), server.graphql_url, "--", str(files.top_products_body)]
    else:
        script = [
            str(LUA_DIR / "product_by_id.lua"),
            server.graphql_url,
            "--",
            str(files.product_by_id_template),
            str(files.product_ids),
        ]
    return [*base, "-s", *script]


def run_wrk(command: list[str], duration_s: int) -> tuple[WrkReport, str]:
    """Run wrk and return its parsed report and its raw output."""
    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if completed.returncode != 0:
        raise WrkError(
            f"wrk exited with status {completed.returncode} after {time.monotonic() - started:.1f} s:\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    return parse_wrk(completed.stdout), completed.stdout
