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

from bench.config import RESULTS_DIR, ROOT, BenchConfig
from bench.operations import PRODUCT_BY_ID, TOP_PRODUCTS

REAL, REFERENCE = "real", "reference"
RATIO_TARGETS = {TOP_PRODUCTS: 0.10, PRODUCT_BY_ID: 0.15}
MAX_STATEMENTS = 5
MAX_WORKER_RSS_MIB = 150.0
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
    return round(float(statistics.median(float(run[key]) for run in runs)), 3)


def summarise(runs: list[dict[str, Any]], config: BenchConfig) -> list[dict[str, Any]]:
    """Per operation and concurrency: each target's medians over the rounds, and the req/s ratio."""
    rows = []
    for operation in (TOP_PRODUCTS, PRODUCT_BY_ID):
        for concurrency in config.concurrencies:
            row: dict[str, Any] = {"operation": operation, "concurrency": concurrency}
            for target in (REAL, REFERENCE):
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
                    "workers_spawned": sum(run["workers_spawned"] for run in chosen),
                    "errors": sum(run["socket_errors"] + run["non_2xx"] for run in chosen),
                    "rounds": len(chosen),
                }
            # The ratio pairs each round's real run with the reference run right after it, then takes
            # the median: drift on a shared machine between rounds cancels out within a pair.
            ratios = [
                real["requests_per_s"] / reference["requests_per_s"]
                for real in runs
                for reference in runs
                if real["target"] == REAL
                and reference["target"] == REFERENCE
                and real["operation"] == reference["operation"] == operation
                and real["concurrency"] == reference["concurrency"] == concurrency
                and real["round"] == reference["round"]
                and reference["requests_per_s"] > 0
            ]
            row["round_ratios"] = [round(ratio, 3) for ratio in ratios]
            row["ratio"] = round(statistics.median(ratios), 3) if ratios else 0.0
            rows.append(row)
    return rows


def check_targets(summary: list[dict[str, Any]], statements: dict[str, Any], worker_rss_mib: float) -> list[Target]:
    """Every target with its measured value: req/s ratios, statements per request, worker memory."""
    targets = [
        Target(
            name=f"{row['operation']} req/s vs reference, c={row['concurrency']}",
            value=f"{row['ratio']:.3f}",
            goal=f"≥ {RATIO_TARGETS[row['operation']]:.2f}",
            passed=row["ratio"] >= RATIO_TARGETS[row["operation"]],
        )
        for row in summary
    ]
    top, top_10 = statements["top_products"], statements["top_products_first_10"]
    targets.append(
        Target(
            name="SQL statements per TopProducts request (first: 50 / first: 10)",
            value=f"{top} / {top_10}",
            goal=f"equal, ≤ {MAX_STATEMENTS}",
            passed=top == top_10 and top <= MAX_STATEMENTS,
        )
    )
    targets.append(
        Target(
            name="worker RSS, max per worker",
            value=f"{worker_rss_mib:.1f} MiB",
            goal=f"≤ {MAX_WORKER_RSS_MIB:.0f} MiB",
            passed=worker_rss_mib <= MAX_WORKER_RSS_MIB,
        )
    )
    return targets


def markdown(
    summary: list[dict[str, Any]],
    targets: list[Target],
    statements: dict[str, Any],
    memory: dict[str, Any],
    server_environment: dict[str, str],
) -> str:
    """The report as Markdown tables, ready to paste into a README."""
    lines = [
        "| operation | conc. | req/s | p50 ms | p99 ms | reference req/s | ref. p50 ms | ref. p99 ms | ratio |"
        " server CPU ms/req | ref. CPU ms/req | PG CPU ms/req (ref.) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in summary:
        real, ref = row[REAL], row[REFERENCE]
        lines.append(
            f"| {row['operation']} | {row['concurrency']} | {real['requests_per_s']:.0f} | {real['p50_ms']:.1f} |"
            f" {real['p99_ms']:.1f} | {ref['requests_per_s']:.0f} | {ref['p50_ms']:.1f} | {ref['p99_ms']:.1f} |"
            f" {row['ratio']:.3f} | {real['server_cpu_ms_per_request']:.2f} | {ref['server_cpu_ms_per_request']:.2f} |"
            f" {real['postgres_cpu_ms_per_request']:.2f} ({ref['postgres_cpu_ms_per_request']:.2f}) |"
        )
    lines += [
        "",
        f"SQL statements per request (in-process count): TopProducts {statements['top_products']}"
        f" (first: 10 → {statements['top_products_first_10']}), ProductById {statements['product_by_id']};"
        f" the reference sends 2. Worker RSS after the run, max per worker: {memory['real_after_mib']:.1f} MiB"
        f" (peak seen during the runs {memory['real_peak_mib']:.1f} MiB;"
        f" reference {memory['reference_after_mib']:.1f} MiB).",
        "",
        *_notes(summary, server_environment),
        "| target | measured | goal | result |",
        "| --- | ---: | --- | --- |",
    ]
    lines += [f"| {t.name} | {t.value} | {t.goal} | {'PASS' if t.passed else 'FAIL'} |" for t in targets]
    return "\n".join(lines)


def _notes(summary: list[dict[str, Any]], server_environment: dict[str, str]) -> list[str]:
    spawned = {target: sum(row[target]["workers_spawned"] for row in summary) for target in (REAL, REFERENCE)}
    notes = [
        f"Workers recycled during the measured runs (memory ceiling or max_requests): real {spawned[REAL]},"
        f" reference {spawned[REFERENCE]}."
    ]
    errors = [
        f"{target} {row['operation']} c={row['concurrency']}: {row[target]['errors']}"
        for row in summary
        for target in (REAL, REFERENCE)
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
