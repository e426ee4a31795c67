"""The lab's own daemons (named, pebble): found by their pid file, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def pid_from_file(pid_file: Path, marker: str) -> int | None:
    """The pid in `pid_file` when that process runs and its command line names `marker`.

    A recycled pid that is not our daemon must never be signalled."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return None
    return pid if marker.encode() in cmdline else None


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL when `pid` is still there after `timeout` seconds."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it, or kill(pid, 0) sees a zombie
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
