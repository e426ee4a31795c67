"""A real BIND9 authoritative master on 127.0.0.1, for the lab and for tests.

Everything (named.conf, zone files, the TSIG key, journals, the pid file) is
generated into one state directory; the server is stopped by its own pid.
Nothing under /etc is read or written.

A server never shares its port: named binds without SO_REUSEPORT
(`reuseport no;`), `start` refuses, naming the holder, when anything already
listens on the address and port (another clone's lab, a test's named), and a
named that finds another process on its port once it runs (a start racing
past the check: UDP sockets can still share a port through SO_REUSEADDR) is
stopped and refused too. Two nameds on one port would each get a random share
of the RFC 2136 updates.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.process import pid_from_file, stop_pid

NAMED = "/usr/sbin/named"
NAMED_CHECKCONF = "/usr/bin/named-checkconf"


class PortInUse(RuntimeError):
    """The address and port a BindServer needs are held by another process."""


def listeners(address: str, port: int) -> dict[int, str]:
    """pid -> process name of everything listening on address:port (TCP or UDP), as ss reports it."""
    try:
        out = subprocess.run(
            ["ss", "-Hlnptu", f"sport = :{port}"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {}
    for line in out.splitlines():
        if not any(a in line for a in (f"{address}:{port}", f"0.0.0.0:{port}", f"*:{port}", f"[::]:{port}")):
            continue
        for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line):
            found[int(pid)] = name
    return found


def port_holder(address: str, port: int) -> str:
    """Who listens on address:port, for a message ("" when ss cannot tell)."""
    return ", ".join(f"{name} (pid {pid})" for pid, name in sorted(listeners(address, port).items()))


def port_free(address: str, port: int) -> bool:
    """Nothing listens on address:port, TCP or UDP (checked by binding without SO_REUSEPORT)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def free_port(address: str = "127.0.0.1") -> int:
    """A port nothing listens on (TCP and UDP), for a server of one's own."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))
            port = sock.getsockname()[1]
        if port_free(address, port):
            return port
    raise RuntimeError(f"no free port found on {address}")


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
  reuseport no;
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
        return pid_from_file(self.pid_file, str(self.conf))

    def running(self) -> bool:
        return self.pid() is not None

    def port_in_use_message(self, holders: dict[int, str] | None = None) -> str:
        found = holders if holders is not None else listeners(self.address, self.port)
        holder = ", ".join(f"{name} (pid {pid})" for pid, name in sorted(found.items())) or "another process"
        return (
            f"{self.address}:{self.port} is already in use by {holder}, so this BIND9 (state {self.state_dir}) "
            "was not started: two nameds on one port would split the RFC 2136 updates between them. "
            "Stop the other server (another clone's lab: `python -m lab down` there) or choose another port "
            "(the lab: lab_bind_port in inventories/lab/group_vars/all/lab.yml, or LAB_BIND_PORT)."
        )

    def start(self, *, reset_zones: bool = False, timeout: float = 15.0) -> None:
        if self.running():
            return
        if not port_free(self.address, self.port):
            raise PortInUse(self.port_in_use_message())
        self.write(reset_zones=reset_zones)
        # -u is not given: on a developer machine we run as root and named
        # keeps root so it can write its journals into the state directory.
        subprocess.run([NAMED, "-c", str(self.conf), "-p", str(self.port)], check=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid and self._answers():
                holders = listeners(self.address, self.port)
                others = {p: name for p, name in holders.items() if p != pid}
                if others:
                    # Taken between the check and named's bind. named then keeps
                    # running without the port, or (UDP with SO_REUSEADDR) shares
                    # it: either way this one must not serve.
                    self.stop()
                    raise PortInUse(self.port_in_use_message(others))
                if pid in holders:
                    return
            time.sleep(0.1)
        log = self.log_file.read_text() if self.log_file.exists() else "(no log)"
        self.stop()
        raise RuntimeError(f"named did not start on {self.address}:{self.port}:\n{log[-2000:]}")

    def _answers(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex((self.address, self.port)) == 0

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        stop_pid(pid, timeout)
