"""`make bench`: the real server against the reference endpoint, under wrk, on the bench database.

    cd <repo> && .venv/bin/python -m bench.run      # what `make bench` runs; BENCH_* variables tune it

Exit status: 0 when the bench ran (whatever the targets say: the report tells), 1 when the
harness itself failed (a server would not start, the two servers disagreed, wrk failed …),
2 for a bad BENCH_* setting, 130 when interrupted. Both servers are stopped in every case.
"""

import asyncio
import math
import os
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from bench.config import COMPILED, GRAPHQL_CORE, WORK_DIR, BenchConfig, ConfigError
from bench.load_data import ensure_dataset, max_connections, product_id_sequence
from bench.loadgen import LoadFiles, ProcessWatcher, run_wrk, wrk_command
from bench.operations import OPERATIONS, PRODUCT_BY_ID, TOP_PRODUCTS, global_id
from bench.procs import KIB, memory_kib, postgres_backends
from bench.report import (
    REFERENCE,
    check_targets,
    code_digest,
    machine_info,
    markdown,
    same_gunicorn_settings,
    summarise,
    write_results,
)
from bench.servers import Server, effective_gunicorn_settings, start_server
from bench.sqlcount import count_statements
from bench.verify import verify_same_json

REFERENCE_APP = "bench.reference:create_app()"
PAUSE_BETWEEN_RUNS_S = 1.0
SERVER_ENV_PREFIXES = ("GUNICORN_", "DB_", "UVICORN_", "GRAPHQL_")
# What each app variant's server adds to the environment every server shares.
VARIANT_ENVIRONMENT = {COMPILED: {"GRAPHQL_COMPILED": "true"}, GRAPHQL_CORE: {"GRAPHQL_COMPILED": "false"}}
POOL_VARIABLES = ("DB_POOL_SIZE", "DB_MAX_OVERFLOW")
SOAK_RUNS_MAX = 3  # a soak short of its request count runs again for the rest, this many runs at most
SPARE_CONNECTIONS = 10  # PostgreSQL's reserved superuser slots, the bench's own connections, psql


def _pool_environment(config: BenchConfig, servers: int) -> dict[str, str]:
    """The same pool size for every server, so that all their workers' pools fit in max_connections together.

    Each server's workers keep their pools' connections open between runs: with three servers of
    two workers at the app's defaults (20 + 10 overflow), the reference ran out of connections
    ("too many clients already") after the app's variants had filled theirs. Set by the
    environment (DB_POOL_SIZE, DB_MAX_OVERFLOW), the environment wins.
    """
    if any(name in os.environ for name in POOL_VARIABLES):
        return {}
    per_worker = min(30, (max_connections(config) - SPARE_CONNECTIONS) // (servers * config.workers))
    size = max(1, per_worker * 2 // 3)
    return {"DB_POOL_SIZE": str(size), "DB_MAX_OVERFLOW": str(max(0, per_worker - size))}


OTHER_CLIENTS_GRACE_S = 10.0  # a server stopped just before the run: its backends take a moment to exit


def _refuse_other_clients(config: BenchConfig) -> None:
    """Refuse to start while anything else is connected to the bench database.

    A server left running from an earlier session or experiment holds its pools' connections (the
    servers of this run then run out of them: "too many clients already" inside the app, answered as
    GraphQL errors, not as failed requests) and its background work takes CPU: a run of record that
    measured that much less than the code (compiled ProductById at c=50: 0.26 of the reference).
    """
    deadline = time.monotonic() + OTHER_CLIENTS_GRACE_S
    while backends := postgres_backends(config.database):
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"bench: {len(backends)} other connection(s) to the database {config.database} (PostgreSQL"
                f" backends {', '.join(map(str, sorted(backends)))}): stop the server or client using it first"
            )
        time.sleep(0.5)


def _write_load_files(product_ids: list[int]) -> LoadFiles:
    """Write the request bodies and the id sequence the wrk Lua scripts read."""
    requests_dir = WORK_DIR / "requests"
    requests_dir.mkdir(parents=True, exist_ok=True)
    operations = {operation.name: operation for operation in OPERATIONS}
    files = LoadFiles(
        top_products_body=requests_dir / "top_products.json",
        product_by_id_template=requests_dir / "product_by_id.template.json",
        product_ids=requests_dir / "product_ids.txt",
    )
    files.top_products_body.write_bytes(operations[TOP_PRODUCTS].body())
    files.product_by_id_template.write_bytes(operations[PRODUCT_BY_ID].body({"id": "@ID@"}))
    files.product_ids.write_text("".join(f"{global_id('Product', pk)}\n" for pk in product_ids))
    return files


def _max_worker_rss_mib(server: Server) -> float:
    rss = [memory[0] for memory in map(memory_kib, server.workers()) if memory is not None]
    return round(max(rss, default=0) / KIB, 1)


def _measure(config: BenchConfig, servers: dict[str, Server], files: LoadFiles) -> list[dict[str, Any]]:
    if config.warmup_s:
        print(f"bench: warming up ({config.warmup_s} s per server and operation)", flush=True)
        for server in servers.values():
            for operation in OPERATIONS:
                command = wrk_command(config, server, operation.name, files, connections=10, duration_s=config.warmup_s)
                run_wrk(command, config.warmup_s)
    runs: list[dict[str, Any]] = []
    for round_number in range(1, config.rounds + 1):
        for concurrency in config.concurrencies:
            for operation in OPERATIONS:
                for target in servers:  # interleaved, so drift on a noisy machine hits all alike
                    server = servers[target]
                    server.check_alive()
                    time.sleep(PAUSE_BETWEEN_RUNS_S)
                    command = wrk_command(
                        config, server, operation.name, files, connections=concurrency, duration_s=config.duration_s
                    )
                    with ProcessWatcher(server, config.database) as watcher:
                        report, output = run_wrk(command, config.duration_s)
                    run: dict[str, Any] = {
                        "round": round_number,
                        "target": target,
                        "operation": operation.name,
                        "concurrency": concurrency,
                        "requests_per_s": report.requests_per_s,
                        "requests": report.requests,
                        "duration_s": report.duration_s,
                        **{f"{name}_ms": round(value, 3) for name, value in report.latency_ms.items()},
                        "socket_errors": report.socket_errors,
                        "non_2xx": report.non_2xx,
                        **watcher.result(report.requests),
                        "wrk_command": " ".join(command),
                        "wrk_output": output,
                    }
                    runs.append(run)
                    errors = report.socket_errors + report.non_2xx
                    per_worker = "/".join(str(count) for count in sorted(run["worker_requests"].values(), reverse=True))
                    print(
                        f"  round {round_number}/{config.rounds}  c={concurrency:<3} {operation.name:<12} {target:<12}"
                        f" {report.requests_per_s:8.1f} req/s  p50 {report.latency_ms['p50']:7.1f} ms"
                        f"  p99 {report.latency_ms['p99']:7.1f} ms"
                        f"  server CPU {run['server_cpu_ms_per_request']:.2f} ms/req"
                        f"  per worker {per_worker}"
                        f"  workers spawned {run['workers_spawned']}" + (f"  ERRORS {errors}" if errors else ""),
                        flush=True,
                    )
    return runs


def _soak(
    config: BenchConfig, servers: dict[str, Server], files: LoadFiles, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """Each app variant's worker RSS before and after at least `soak_requests` more ProductById requests.

    After the rounds, so every worker has already met the highest concurrency (its memory's high-water
    mark): what grows over the soak is what each request leaves behind. Its length comes from the
    variant's median rate in the rounds, with a tenth to spare; a soak that served fewer (the rate
    drifts on a shared machine) runs again for the rest, at the rate it had.
    """
    soaks: dict[str, Any] = {}
    if not config.soak_requests:
        return soaks
    concurrency = max(config.concurrencies)
    for variant in config.variants:
        rates = sorted(
            run["requests_per_s"]
            for run in runs
            if run["target"] == variant and run["operation"] == PRODUCT_BY_ID and run["concurrency"] == concurrency
        )
        rate = rates[len(rates) // 2] if rates else 100.0
        server = servers[variant]
        before = _max_worker_rss_mib(server)
        served, total_s = 0, 0
        for _ in range(SOAK_RUNS_MAX):
            duration_s = max(1, math.ceil((config.soak_requests - served) / max(rate, 1.0) * 1.1))
            print(f"bench: soak of {variant}: ProductById, c={concurrency}, {duration_s} s", flush=True)
            command = wrk_command(config, server, PRODUCT_BY_ID, files, connections=concurrency, duration_s=duration_s)
            report, _ = run_wrk(command, duration_s)
            served, total_s = served + report.requests, total_s + duration_s
            rate = report.requests / duration_s
            if served >= config.soak_requests or not report.requests:
                break
        soaks[variant] = {
            "requests": served,
            "duration_s": total_s,
            "rss_before_mib": before,
            "rss_after_mib": _max_worker_rss_mib(server),
        }
    return soaks


def bench(config: BenchConfig) -> None:
    """Run the whole benchmark once and report it."""
    started_at = datetime.now(UTC)
    started = time.monotonic()
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not on PATH: `make -C bench wrk` installs it")
    # Workers recycled mid-run import the code afresh: note its state now, and compare at the end.
    machine = machine_info()
    code_at_start = code_digest(machine["git_commit"])
    _refuse_other_clients(config)
    dataset = ensure_dataset(config)
    print(
        f"bench: data set {dataset.products} products ({dataset.published_products} published),"
        f" {dataset.reviews} reviews, {dataset.users} users"
        + (f", loaded in {dataset.load_seconds} s" if dataset.loaded else " (already loaded)"),
        flush=True,
    )
    product_ids = product_id_sequence(config)
    files = _write_load_files(product_ids)
    statements_record: dict[str, dict[str, Any]] = {}
    for variant in config.variants:
        statements = asyncio.run(count_statements(config.database_url, product_ids[0], VARIANT_ENVIRONMENT[variant]))
        statements_record[variant] = {**asdict(statements), "constant_in_page_size": statements.constant_in_page_size}
        print(
            f"bench: SQL statements per request ({variant}): TopProducts {statements.top_products}"
            f" (first: 10 → {statements.top_products_first_10}), ProductById {statements.product_by_id}",
            flush=True,
        )
    pools = _pool_environment(config, servers=len(config.variants) + 1)
    if pools:
        print(f"bench: every server's pool: {pools} (within PostgreSQL's max_connections)", flush=True)
    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        plan = [(variant, None, VARIANT_ENVIRONMENT[variant]) for variant in config.variants]
        for target, app, environment in [*plan, (REFERENCE, REFERENCE_APP, {})]:
            servers[target] = start_server(target, app, config, WORK_DIR, {**pools, **environment})
            stack.callback(servers[target].stop)
        for server in servers.values():
            server.wait_ready(config.workers)
        print("bench: servers up: " + ", ".join(f"{name} {server.url}" for name, server in servers.items()), flush=True)
        gunicorn_settings = {name: effective_gunicorn_settings(server) for name, server in servers.items()}
        print(
            "bench: gunicorn settings "
            + ("identical" if same_gunicorn_settings(gunicorn_settings) else "DIFFER")
            + f" but for the app: {gunicorn_settings[REFERENCE]}",
            flush=True,
        )
        verifications = {}
        for variant in config.variants:
            verification = verify_same_json(servers[variant], servers[REFERENCE], product_ids)
            verifications[variant] = asdict(verification)
            print(
                f"bench: {variant} and the reference answer alike ({verification.requests} requests,"
                f" {verification.byte_identical} byte-identical)",
                flush=True,
            )
        runs = _measure(config, servers, files)
        soaks = _soak(config, servers, files, runs)
        for server in servers.values():
            server.check_alive()
        memory = {
            name: {
                "after_mib": _max_worker_rss_mib(server),
                "peak_mib": max((run["peak_worker_rss_mib"] for run in runs if run["target"] == name), default=0.0),
            }
            for name, server in servers.items()
        }
    code_changed = code_digest(machine["git_commit"]) != code_at_start
    if code_changed:
        print("bench: WARNING: the Python code changed during the run; recycled workers may have served it")
    summary = summarise(runs, config)
    # The stricter of the two: a worker recycled mid-run may have been the biggest.
    worker_rss = {name: max(memory[name]["after_mib"], memory[name]["peak_mib"]) for name in config.variants}
    targets = check_targets(summary, statements_record, worker_rss, config.variants, soaks)
    server_environment = {
        name: value for name, value in sorted({**os.environ, **pools}.items()) if name.startswith(SERVER_ENV_PREFIXES)
    }
    table = markdown(
        summary, targets, statements_record, memory, soaks, server_environment, gunicorn_settings, config.variants
    )
    if code_changed:
        table += "\n\n**The code changed during this run**: recycled workers may have served the new code."
    record = {
        "started_at": started_at.isoformat(),
        "elapsed_s": round(time.monotonic() - started, 1),
        "config": asdict(config),
        # Server knobs passed through from the environment (gunicorn.conf.py and Settings read them).
        "server_environment": server_environment,
        # What each server's environment adds (the app variants), and gunicorn's resolved settings.
        "server_variants": {name: server.environment for name, server in servers.items()},
        "gunicorn_settings": gunicorn_settings,
        "machine": machine,
        "code_changed_during_run": code_changed,
        "dataset": asdict(dataset),
        "statements": statements_record,
        "verification": verifications,
        "memory": memory,
        "soaks": soaks,
        "summary": summary,
        "targets": [asdict(target) for target in targets],
        "markdown": table,
        "runs": runs,
    }
    path = write_results(record, started_at)
    print()
    print(table)
    print()
    passed = sum(target.passed for target in targets)
    print(
        f"bench: {passed} of {len(targets)} targets met; results in {path} (and results/latest.json);"
        f" took {record['elapsed_s']:.0f} s"
    )


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        config = BenchConfig.from_env()
    except ConfigError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    try:
        bench(config)
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"bench: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
