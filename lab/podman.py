"""podman, always with the repository's containers.conf (nothing in /etc)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CONTAINERS_CONF = Path(__file__).with_name("containers.conf")


def env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def run(*args: str, check: bool = True, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], check=check, env=env(), stdin=stdin, capture_output=True, text=True)
