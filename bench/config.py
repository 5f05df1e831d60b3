"""Benchmark settings, read from BENCH_* environment variables."""

import os
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"  # generated request files and server logs (git-ignored)
RESULTS_DIR = BENCH_DIR / "results"
LUA_DIR = BENCH_DIR / "lua"
VENV_BIN = ROOT / ".venv" / "bin"
LOOPBACK = "127.0.0.1"
# The app is measured twice: its compiled execution path, and graphql-core's (GRAPHQL_COMPILED=false).
COMPILED, GRAPHQL_CORE = "compiled", "graphql-core"
VARIANTS = (COMPILED, GRAPHQL_CORE)


class ConfigError(ValueError):
    """A BENCH_* variable has a value the bench cannot use."""


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.removesuffix("s"))
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _ints(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        values = tuple(int(item) for item in raw.split(",") if item.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be a comma-separated list of integers, got {raw!r}") from exc
    if not values or min(values) < 1:
        raise ConfigError(f"{name} must list positive integers, got {raw!r}")
    return values


def _variants(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return VARIANTS
    chosen = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    unknown = [item for item in chosen if item not in VARIANTS]
    if not chosen or unknown:
        raise ConfigError(f"{name} must list some of {', '.join(VARIANTS)}, got {raw!r}")
    return chosen


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What one `make bench` does; every field has a BENCH_* variable."""

    rounds: int
    duration_s: int
    warmup_s: int
    concurrencies: tuple[int, ...]
    wrk_threads: int
    wrk_timeout_s: int
    workers: int
    soak_requests: int
    variants: tuple[str, ...]
    reload: bool
    postgres_url: str
    database: str

    @property
    def database_url(self) -> str:
        return f"{self.postgres_url}/{self.database}"

    @classmethod
    def from_env(cls) -> "BenchConfig":
        postgres_url = os.environ.get("BENCH_POSTGRES_URL", f"postgresql://postgres@{LOOPBACK}:5432").rstrip("/")
        host = postgres_url.split("@")[-1].split(":")[0].split("/")[0]
        if host not in {LOOPBACK, "localhost"}:
            raise ConfigError(f"BENCH_POSTGRES_URL must point at a loopback server, got host {host!r}")
        database = os.environ.get("BENCH_DATABASE", "storefront_bench").strip()
        if not database.replace("_", "").isalnum():
            raise ConfigError(f"BENCH_DATABASE must be letters, digits and underscores, got {database!r}")
        return cls(
            rounds=_int("BENCH_ROUNDS", 3),
            duration_s=_int("BENCH_DURATION", 10),
            warmup_s=_int("BENCH_WARMUP", 3, minimum=0),
            concurrencies=_ints("BENCH_CONCURRENCY", (10, 50)),
            wrk_threads=_int("BENCH_THREADS", 2),
            wrk_timeout_s=_int("BENCH_TIMEOUT", 10),
            workers=_int("BENCH_WORKERS", 2),
            soak_requests=_int("BENCH_SOAK_REQUESTS", 50_000, minimum=0),
            variants=_variants("BENCH_VARIANTS"),
            reload=_flag("BENCH_RELOAD"),
            postgres_url=postgres_url,
            database=database,
        )
