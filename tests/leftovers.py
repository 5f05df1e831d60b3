"""Processes a test run started and did not stop: found at the end of the run, they fail it.

Servers, browsers and Redis instances that tests start run in sessions of their own, so when one
is left behind it is re-parented to init and no parent-child walk finds it. What they share is
their working directory (the repository) and a start after the run began.
"""

import os
import time
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GRACE_SECONDS = 5.0


def seconds_since_boot() -> float:
    """The machine's uptime, the clock process start times are counted on."""
    return float((PROC / "uptime").read_text().split()[0])


def _started_after(stat: str, since: float) -> bool:
    # Fields after the command name (which may hold spaces): state is the 1st, starttime the 20th.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[0] != "Z" and int(fields[19]) / CLOCK_TICKS >= since


def started_here(root: Path, since: float, spared: set[int]) -> dict[int, str]:
    """Live processes working in `root` that started after `since`, except the `spared` pids."""
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != root or not _started_after((entry / "stat").read_text(), since):
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone while we looked, or not ours to read
    return found


def leftovers(root: Path, since: float, spared: set[int]) -> dict[int, str]:
    """The processes still running in `root` after a grace period for those already stopping."""
    deadline = time.monotonic() + GRACE_SECONDS
    while (found := started_here(root, since, spared)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found
