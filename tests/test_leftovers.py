"""The end-of-run check for processes a test left behind finds them, and only them."""

import os
import subprocess
import time
from pathlib import Path

from tests.leftovers import leftovers, seconds_since_boot, started_here


def test_a_process_started_in_the_directory_is_found_until_it_stops(tmp_path: Path) -> None:
    # given: a process in its own session, as the tests start servers
    since = seconds_since_boot() - 1
    process = subprocess.Popen(["sleep", "30"], cwd=tmp_path, start_new_session=True)  # noqa: S607 - coreutils
    try:
        _wait_until_running(process.pid, b"sleep")
        # when
        found = started_here(tmp_path, since, spared=set())
        seen = _described(process.pid)
    finally:
        process.kill()
        process.wait()

    # then
    assert list(found) == [process.pid], (found, since, seen)
    assert found[process.pid].startswith("sleep 30")
    assert leftovers(tmp_path, since, spared=set()) == {}


def test_processes_started_before_the_run_or_spared_are_not_leftovers(tmp_path: Path) -> None:
    process = subprocess.Popen(["sleep", "30"], cwd=tmp_path, start_new_session=True)  # noqa: S607 - coreutils
    try:
        assert started_here(tmp_path, seconds_since_boot() + 60, spared=set()) == {}
        assert started_here(tmp_path, 0, spared={process.pid}) == {}
    finally:
        process.kill()
        process.wait()


def _wait_until_running(pid: int, program: bytes) -> None:
    # Popen returns before the child has exec'd; until then its command line reads empty.
    cmdline = Path("/proc") / str(pid) / "cmdline"
    deadline = time.monotonic() + 10
    while not cmdline.read_bytes().startswith(program):
        assert time.monotonic() < deadline, f"{pid} never ran {program!r}"
        time.sleep(0.01)


def _described(pid: int) -> tuple[str, str]:
    # What the check reads of a process, for the failure message.
    proc = Path("/proc") / str(pid)
    try:
        return os.readlink(proc / "cwd"), (proc / "stat").read_text()
    except OSError as exc:
        return "unreadable", repr(exc)
