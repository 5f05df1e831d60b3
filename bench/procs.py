"""Reading /proc: the workers of a gunicorn master, their memory, and CPU time of processes."""

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KIB = 1024


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/<pid>/stat the bench uses; CPU times in seconds."""

    pid: int
    ppid: int
    cpu_s: float  # utime + stime
    children_cpu_s: float  # cutime + cstime: the reaped children's CPU time


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None when the process is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses; the rest follows the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        cpu_s=(utime + stime) / CLOCK_TICKS,
        children_cpu_s=(cutime + cstime) / CLOCK_TICKS,
    )


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def children_of(parent: int) -> list[int]:
    """The pids whose parent is `parent` (a gunicorn master's workers)."""
    children = []
    for pid in _pids():
        stat = read_stat(pid)
        if stat is not None and stat.ppid == parent:
            children.append(pid)
    return sorted(children)


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in KiB; None when it is gone."""
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def tree_cpu_s(parent: int) -> float:
    """CPU seconds of a master, its live children and its reaped children.

    The difference of two readings is the CPU the whole tree used in between, workers that
    were recycled meanwhile included (a reaped child's time moves into the parent's cutime).
    """
    stat = read_stat(parent)
    if stat is None:
        return 0.0
    live = (read_stat(pid) for pid in children_of(parent))
    return stat.cpu_s + stat.children_cpu_s + sum(child.cpu_s for child in live if child is not None)


def postgres_backends(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving `database` (found by its process title)."""
    marker = f" {database} ".encode()
    backends = {}
    for pid in _pids():
        try:
            cmdline = (PROC / str(pid) / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if cmdline.startswith(b"postgres: ") and marker in cmdline:
            stat = read_stat(pid)
            if stat is not None:
                backends[pid] = stat.cpu_s
    return backends


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (from /proc/stat)."""
    first = (PROC / "stat").read_text().splitlines()[0].split()
    ticks = [int(value) for value in first[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS
