"""Shared test harness: run playbooks the way an operator does, start
throw-away lab hosts, and read the results.

Every test host is a podman container publishing ports on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAB_INVENTORY = REPO / "inventories" / "lab"

_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass
class PlaybookRun:
    rc: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self, host: str) -> int:
        return self.recap[host]["changed"]

    def failed(self, host: str) -> int:
        return self.recap[host]["failed"]


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "CONTAINERS_CONF": str(REPO / "lab" / "containers.conf"),
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
    }
    env.update(extra or {})
    return env


def ansible_playbook(
    playbook: str | Path,
    inventory: str | Path = LAB_INVENTORY,
    *args: str,
    extra_vars: dict | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 900,
) -> PlaybookRun:
    """Run ansible-playbook from the repository root; never raises on failure."""
    cmd = [str(BIN / "ansible-playbook"), str(playbook), "-i", str(inventory), *args]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    env = dict(env or {})
    if extra_vars and "ansible_host" in extra_vars:
        # Every lab test host has the inventory name lab-portal: give each
        # container its own fact cache so facts never leak between hosts.
        env.setdefault("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(fact_cache(extra_vars["ansible_host"])))
    proc = subprocess.run(
        cmd, cwd=REPO, env=environment(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    recap = {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")} for m in _RECAP.finditer(output)
    }
    return PlaybookRun(proc.returncode, output, recap)


def fact_cache(container: str) -> Path:
    return REPO / ".cache" / "test-facts" / container


@contextlib.contextmanager
def lab_host(name: str, http_port: int, https_port: int) -> Iterator[dict]:
    """A fresh lab portal host (podman + systemd) for one test module.

    Yields extra vars that point the lab inventory's host at it."""
    from lab.__main__ import portal_down, portal_up

    portal_down(name)
    shutil.rmtree(fact_cache(name), ignore_errors=True)
    portal_up(name=name, http_port=http_port, https_port=https_port)
    try:
        yield {"ansible_host": name, "lab_portal_http_port": http_port, "lab_portal_https_port": https_port}
    finally:
        if not os.environ.get("KEEP_TEST_HOSTS"):
            portal_down(name)


def podman_exec(container: str, *cmd: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", "exec", container, *cmd], env=environment(), capture_output=True, text=True, check=check
    )
