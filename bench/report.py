"""Medians over rounds, the targets, the Markdown table and the JSON record of a bench run."""

import hashlib
import importlib.metadata
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.config import COMPILED, GRAPHQL_CORE, RESULTS_DIR, ROOT, BenchConfig
from bench.operations import PRODUCT_BY_ID, TOP_PRODUCTS

REFERENCE = "reference"
# req/s vs the reference, by variant: the compiled path's (issue 14) at both concurrencies; graphql-core's
# are the earlier floors the app has met since before the compiled path existed.
RATIO_TARGETS = {
    COMPILED: {TOP_PRODUCTS: 0.50, PRODUCT_BY_ID: 0.50},
    GRAPHQL_CORE: {TOP_PRODUCTS: 0.10, PRODUCT_BY_ID: 0.15},
}
P99_TARGET_CONCURRENCY = 50
MAX_P99_VS_REFERENCE = 3.0
MAX_STATEMENTS = 5
MAX_WORKER_RSS_MIB = 150.0
# "Flat": what a worker's RSS may grow over the soak after the rounds, which must serve at least this
# many requests (by then the caches are full and every worker has met the highest concurrency).
MAX_WORKER_RSS_GROWTH_MIB = 5.0
MIN_SOAK_REQUESTS = 50_000
PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "sqlalchemy",
    "asyncpg",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvicorn-worker",
    "gunicorn",
    "uvloop",
    "httptools",
    "orjson",
    "aiodataloader",
)


@dataclass(frozen=True, slots=True)
class Target:
    """One goal of the bench and whether this run met it."""

    name: str
    value: str
    goal: str
    passed: bool


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(float(statistics.median(float(run[key]) for run in runs)), 3) if runs else 0.0


def _per_worker(runs: list[dict[str, Any]]) -> list[int]:
    # The requests each worker served in the round with the median req/s, largest first.
    if not runs:
        return []
    middle = sorted(runs, key=lambda run: run["requests_per_s"])[(len(runs) - 1) // 2]
    return sorted(middle["worker_requests"].values(), reverse=True)


def summarise(runs: list[dict[str, Any]], config: BenchConfig) -> list[dict[str, Any]]:
    """Per operation and concurrency: each server's medians over the rounds, and each app variant's req/s ratio."""
    rows = []
    for operation in (TOP_PRODUCTS, PRODUCT_BY_ID):
        for concurrency in config.concurrencies:
            row: dict[str, Any] = {"operation": operation, "concurrency": concurrency, "ratio": {}, "round_ratios": {}}
            for target in (*config.variants, REFERENCE):
                chosen = [
                    run
                    for run in runs
                    if run["operation"] == operation and run["concurrency"] == concurrency and run["target"] == target
                ]
                row[target] = {
                    "requests_per_s": _median(chosen, "requests_per_s"),
                    "p50_ms": _median(chosen, "p50_ms"),
                    "p99_ms": _median(chosen, "p99_ms"),
                    "server_cpu_ms_per_request": _median(chosen, "server_cpu_ms_per_request"),
                    "postgres_cpu_ms_per_request": _median(chosen, "postgres_cpu_ms_per_request"),
                    "peak_worker_rss_mib": max((run["peak_worker_rss_mib"] for run in chosen), default=0.0),
                    "max_worker_share": _median(chosen, "max_worker_share"),
                    "worker_requests": _per_worker(chosen),
                    "workers_spawned": sum(run["workers_spawned"] for run in chosen),
                    "errors": sum(run["socket_errors"] + run["non_2xx"] for run in chosen),
                    "rounds": len(chosen),
                }
            # The ratio pairs each round's app run with the reference run of the same round, then takes
            # the median: drift on a shared machine between rounds cancels out within a round.
            for variant in config.variants:
                ratios = [
                    real["requests_per_s"] / reference["requests_per_s"]
                    for real in runs
                    for reference in runs
                    if real["target"] == variant
                    and reference["target"] == REFERENCE
                    and real["operation"] == reference["operation"] == operation
                    and real["concurrency"] == reference["concurrency"] == concurrency
                    and real["round"] == reference["round"]
                    and reference["requests_per_s"] > 0
                ]
                row["round_ratios"][variant] = [round(ratio, 3) for ratio in ratios]
                row["ratio"][variant] = round(statistics.median(ratios), 3) if ratios else 0.0
            rows.append(row)
    return rows


def check_targets(
    summary: list[dict[str, Any]],
    statements: dict[str, dict[str, Any]],
    worker_rss_mib: dict[str, float],
    variants: tuple[str, ...],
    soaks: dict[str, dict[str, Any]],
) -> list[Target]:
    """Every target of every app variant: req/s ratios, p99 at c=50, statements per request, worker memory."""
    targets = []
    for variant in variants:
        for row in summary:
            goal = RATIO_TARGETS[variant][row["operation"]]
            targets.append(
                Target(
                    name=f"{variant}: {row['operation']} req/s vs reference, c={row['concurrency']}",
                    value=f"{row['ratio'][variant]:.3f}",
                    goal=f"≥ {goal:.2f}",
                    passed=row["ratio"][variant] >= goal,
                )
            )
        for row in summary:
            if row["concurrency"] != P99_TARGET_CONCURRENCY:
                continue
            p99, reference_p99 = row[variant]["p99_ms"], row[REFERENCE]["p99_ms"]
            targets.append(
                Target(
                    name=f"{variant}: {row['operation']} p99 vs reference's, c={row['concurrency']}",
                    value=f"{p99:.1f} / {reference_p99:.1f} ms",
                    goal=f"≤ {MAX_P99_VS_REFERENCE:.0f}×",
                    passed=p99 <= MAX_P99_VS_REFERENCE * reference_p99,
                )
            )
        counts = statements[variant]
        top, top_10 = counts["top_products"], counts["top_products_first_10"]
        targets.append(
            Target(
                name=f"{variant}: SQL statements per TopProducts request (first: 50 / first: 10)",
                value=f"{top} / {top_10}",
                goal=f"equal, ≤ {MAX_STATEMENTS}",
                passed=top == top_10 and top <= MAX_STATEMENTS,
            )
        )
        targets.append(
            Target(
                name=f"{variant}: worker RSS, max per worker",
                value=f"{worker_rss_mib[variant]:.1f} MiB",
                goal=f"≤ {MAX_WORKER_RSS_MIB:.0f} MiB",
                passed=worker_rss_mib[variant] <= MAX_WORKER_RSS_MIB,
            )
        )
        soak = soaks.get(variant)
        grown = soak["rss_after_mib"] - soak["rss_before_mib"] if soak else 0.0
        served = soak["requests"] if soak else 0
        targets.append(
            Target(
                name=f"{variant}: worker RSS growth over the soak ({served} ProductById requests)",
                value=f"{grown:+.1f} MiB" if soak else "not run (BENCH_SOAK_REQUESTS=0)",
                goal=f"≤ +{MAX_WORKER_RSS_GROWTH_MIB:.0f} MiB over ≥ {MIN_SOAK_REQUESTS} requests",
                passed=served >= MIN_SOAK_REQUESTS and grown <= MAX_WORKER_RSS_GROWTH_MIB,
            )
        )
    return targets


def markdown(
    summary: list[dict[str, Any]],
    targets: list[Target],
    statements: dict[str, dict[str, Any]],
    memory: dict[str, dict[str, float]],
    soaks: dict[str, dict[str, Any]],
    server_environment: dict[str, str],
    gunicorn_settings: dict[str, dict[str, str]],
    variants: tuple[str, ...],
) -> str:
    """The report as Markdown tables, ready to paste into a README."""
    lines = [
        "| operation | conc. | server | req/s | ratio | CPU ms/req | p50 ms | p99 ms | PG CPU ms/req |"
        " worker RSS MiB | requests per worker |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in summary:
        for target in (*variants, REFERENCE):
            measured = row[target]
            ratio = f"{row['ratio'][target]:.3f}" if target in row["ratio"] else "1"
            shares = " / ".join(str(count) for count in measured["worker_requests"]) or "–"
            lines.append(
                f"| {row['operation']} | {row['concurrency']} | {target} | {measured['requests_per_s']:.0f} | {ratio} |"
                f" {measured['server_cpu_ms_per_request']:.2f} | {measured['p50_ms']:.1f} | {measured['p99_ms']:.1f} |"
                f" {measured['postgres_cpu_ms_per_request']:.2f} | {measured['peak_worker_rss_mib']:.0f} |"
                f" {shares} ({measured['max_worker_share']:.0%} max) |"
            )
    statement_counts = "; ".join(
        f"{variant} TopProducts {statements[variant]['top_products']}"
        f" (first: 10 → {statements[variant]['top_products_first_10']}),"
        f" ProductById {statements[variant]['product_by_id']}"
        for variant in variants
    )
    rss = ", ".join(
        f"{target} {memory[target]['after_mib']:.1f} MiB (peak {memory[target]['peak_mib']:.1f})"
        for target in (*variants, REFERENCE)
    )
    soaked = "; ".join(
        f"{variant} {soak['rss_before_mib']:.1f} → {soak['rss_after_mib']:.1f} MiB over {soak['requests']} requests"
        f" in {soak['duration_s']} s"
        for variant, soak in soaks.items()
    )
    lines += [
        "",
        f"SQL statements per request (in-process count): {statement_counts}; the reference sends 2."
        f" Worker RSS after the runs, max per worker: {rss}."
        + (f" Soak (ProductById after the rounds), max per worker: {soaked}." if soaked else ""),
        "",
        *_notes(summary, server_environment, gunicorn_settings, variants),
        "| target | measured | goal | result |",
        "| --- | ---: | --- | --- |",
    ]
    lines += [f"| {t.name} | {t.value} | {t.goal} | {'PASS' if t.passed else 'FAIL'} |" for t in targets]
    return "\n".join(lines)


def same_gunicorn_settings(gunicorn_settings: dict[str, dict[str, str]]) -> bool:
    """Whether every server runs with the same gunicorn settings, but for the app it serves."""
    shared = [
        {key: value for key, value in settings.items() if key != "wsgi_app"} for settings in gunicorn_settings.values()
    ]
    return all(settings == shared[0] for settings in shared)


def _notes(
    summary: list[dict[str, Any]],
    server_environment: dict[str, str],
    gunicorn_settings: dict[str, dict[str, str]],
    variants: tuple[str, ...],
) -> list[str]:
    targets = (*variants, REFERENCE)
    spawned = {target: sum(row[target]["workers_spawned"] for row in summary) for target in targets}
    recycled = ", ".join(f"{target} {count}" for target, count in spawned.items())
    notes = [
        "ratio: req/s ÷ the reference's, per round, median. CPU ms/req: the server's master and workers"
        " (from /proc) over the requests served. requests per worker: each worker's count in the median round.",
        f"Workers recycled during the measured runs (memory ceiling or max_requests): {recycled}.",
    ]
    any_settings = next(iter(gunicorn_settings.values()), {})
    shown = ", ".join(f"`{key}={value}`" for key, value in any_settings.items() if key != "wsgi_app")
    if same_gunicorn_settings(gunicorn_settings):
        notes.append(f"Every server ran with the same gunicorn settings (--print-config): {shown}.")
    else:
        notes.append(f"WARNING: the servers' gunicorn settings differ: {gunicorn_settings}.")
    errors = [
        f"{target} {row['operation']} c={row['concurrency']}: {row[target]['errors']}"
        for row in summary
        for target in targets
        if row[target]["errors"]
    ]
    if server_environment:
        overrides = ", ".join(f"`{name}={value}`" for name, value in server_environment.items())
        notes.append(f"Server settings from the environment: {overrides}.")
    if errors:
        notes.append(
            "Socket errors and non-2xx responses, summed over the rounds (see the JSON record): "
            + "; ".join(errors)
            + "."
        )
    return [" ".join(notes), ""]


def _git(*args: str) -> str:
    try:
        completed = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return completed.stdout.strip()


def machine_info() -> dict[str, Any]:
    """What this run ran on: cores, CPU, memory, Python, the packages that matter, the commit."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_total_kib = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_total_kib / 1024 / 1024, 1),
        "load_average": os.getloadavg(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench")),
    }


def code_digest(base_commit: str) -> str:
    """A digest of how the Python code and uv.lock outside bench/ differ from a commit, in the work tree.

    Two equal digests against the same commit mean the servers' code did not change in between,
    whether by an edit or by a commit; README or other non-code changes do not count.
    """
    diff = _git("diff", base_commit, "--", "*.py", "uv.lock", ":(exclude)bench")
    return hashlib.sha256(diff.encode()).hexdigest()


def write_results(record: dict[str, Any], started: datetime) -> Path:
    """Write the run's record as results/<UTC timestamp>.json and results/latest.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    path = RESULTS_DIR / f"{started.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_bytes(data)
    (RESULTS_DIR / "latest.json").write_bytes(data)
    return path
