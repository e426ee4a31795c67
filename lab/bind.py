"""A real BIND9 authoritative master on 127.0.0.1, for the lab and for tests.

Everything (named.conf, zone files, the TSIG key, journals, the pid file) is
generated into one state directory; the server is stopped by its own pid.
Nothing under /etc is read or written.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

NAMED = "/usr/sbin/named"
NAMED_CHECKCONF = "/usr/bin/named-checkconf"


@dataclass(frozen=True)
class TsigKey:
    name: str
    secret: str
    algorithm: str = "hmac-sha256"

    def stanza(self) -> str:
        return f'key "{self.name}" {{\n  algorithm {self.algorithm};\n  secret "{self.secret}";\n}};\n'


@dataclass(frozen=True)
class Zone:
    """One authoritative zone.

    `records` are zone-file lines relative to the origin (for example
    "www 300 IN A 127.0.0.1"). `update_key` allows RFC 2136 updates signed
    with that key for the whole zone; `update_policy` (raw BIND grant
    statements) narrows it instead; neither means the zone is read-only.
    """

    name: str
    records: tuple[str, ...] = ()
    update_key: str | None = None
    update_policy: tuple[str, ...] = ()
    serial: int = 1

    def zone_file(self) -> str:
        lines = [
            f"$ORIGIN {self.name}.",
            "$TTL 300",
            f"@ IN SOA ns1.{self.name}. hostmaster.{self.name}. ({self.serial} 3600 600 86400 300)",
            f"@ IN NS ns1.{self.name}.",
            "ns1 IN A 127.0.0.1",
            *self.records,
        ]
        return "\n".join(lines) + "\n"

    def stanza(self, directory: Path) -> str:
        body = [f'  type primary;\n  file "{directory / self.file_name}";']
        if self.update_policy:
            grants = "".join(f"    {g};\n" for g in self.update_policy)
            body.append(f"  update-policy {{\n{grants}  }};")
        elif self.update_key:
            body.append(f'  allow-update {{ key "{self.update_key}"; }};')
        else:
            body.append("  allow-update { none; };")
        return f'zone "{self.name}" {{\n' + "\n".join(body) + "\n};\n"

    @property
    def file_name(self) -> str:
        return f"db.{self.name}"


@dataclass
class BindServer:
    state_dir: Path
    port: int
    zones: list[Zone] = field(default_factory=list)
    keys: list[TsigKey] = field(default_factory=list)
    address: str = "127.0.0.1"

    @property
    def conf(self) -> Path:
        return self.state_dir / "named.conf"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "named.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "named.log"

    def render(self) -> str:
        options = f"""options {{
  directory "{self.state_dir}";
  pid-file "{self.pid_file}";
  listen-on port {self.port} {{ {self.address}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  allow-transfer {{ none; }};
  notify no;
  session-keyfile "{self.state_dir}/session.key";
  managed-keys-directory "{self.state_dir}";
}};
logging {{
  channel main {{ file "{self.log_file}"; severity info; print-time yes; }};
  category default {{ main; }};
  category update {{ main; }};
  category update-security {{ main; }};
  category security {{ main; }};
}};
controls {{ }};
"""
        keys = "".join(k.stanza() for k in self.keys)
        zones = "".join(z.stanza(self.state_dir) for z in self.zones)
        return options + keys + zones

    def write(self, *, reset_zones: bool) -> None:
        """Generate the configuration; zone files are rewritten only on reset
        (a running lab keeps the records its playbooks added)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.conf.write_text(self.render())
        os.chmod(self.conf, 0o600)  # holds TSIG secrets
        for zone in self.zones:
            path = self.state_dir / zone.file_name
            if reset_zones or not path.exists():
                path.write_text(zone.zone_file())
                for journal in path.parent.glob(path.name + ".jnl"):
                    journal.unlink()
        subprocess.run([NAMED_CHECKCONF, "-z", str(self.conf)], check=True, capture_output=True, text=True)

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        # A recycled pid that is not our named must never be signalled.
        return pid if str(self.conf).encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, *, reset_zones: bool = False, timeout: float = 15.0) -> None:
        if self.running():
            return
        self.write(reset_zones=reset_zones)
        # -u is not given: on a developer machine we run as root and named
        # keeps root so it can write its journals into the state directory.
        subprocess.run([NAMED, "-c", str(self.conf), "-p", str(self.port)], check=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running() and self._answers():
                return
            time.sleep(0.1)
        log = self.log_file.read_text() if self.log_file.exists() else "(no log)"
        raise RuntimeError(f"named did not start on {self.address}:{self.port}:\n{log[-2000:]}")

    def _answers(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex((self.address, self.port)) == 0

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
