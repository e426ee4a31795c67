"""site.yml killed (SIGKILL to the whole ansible-playbook process group) at
five points spread over the roles, each followed by a normal run that must
converge to the same end state, with the site serving throughout wherever it
served before the kill.

One throw-away host, its own BIND9. The first point interrupts the first
converge of the fresh host; the normal run after it gives the reference end
state. For each later point the test first puts back the work that point's
task does (removes the file it writes, deletes the DNS records it sends), then
runs site.yml from the start of that role (`--start-at-task`, so the killed
run reaches its point quickly), kills it when the task starts, and runs the
whole site.yml normally. While those two runs go, a thread polls HTTPS on the
published loopback port for both names, verifying the certificate against the
lab CA: every poll must succeed.

The end state compared (`fingerprint`): hash, mode and owner of every file
the roles manage on the host, the DNS records at the master, and the
certificate nginx serves for each name.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import dns.tsig
import dns.update
import pytest
import yaml

from lab.bind import BindServer, TsigKey, Zone
from tests.harness import BIN, LAB_INVENTORY, REPO, ansible_playbook, environment, lab_host, podman_exec

CONTAINER = "esia-test-interrupted"
HTTP_PORT, HTTPS_PORT = 38694, 38695
HOST = "lab-portal"
LAB_VARS = {
    k: v
    for f in ("portal_domain.yml", "portal_https.yml")
    for k, v in yaml.safe_load((LAB_INVENTORY / "group_vars" / "all" / f).read_text()).items()
}
ZONE = LAB_VARS["portal_domain_zone"]
NAMES = (LAB_VARS["portal_domain_name"], LAB_VARS["portal_domain_fallback"])
KEY_NAME = LAB_VARS["portal_domain_tsig_name"]
TSIG_SECRET = base64.b64encode(secrets.token_bytes(32)).decode()
LAB_CA = REPO / ".lab" / "ca" / "root-ca.crt"
# What the roles write on the host; backups ("~") and logs are not state.
STATE_PATHS = (
    "/etc/chrony",
    "/etc/default/chrony",
    "/etc/nginx",
    "/etc/ssl/esia-portal",
    "/etc/esia-onboard",
    "/etc/esia-portal",
    "/usr/local/bin/esia-sign",
    "/var/lib/esia-portal",
)


def free_port() -> int:
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@dataclass
class Site:
    dns: BindServer
    extra: dict
    args: list[str]
    env: dict[str, str]
    log_dir: Path

    def records(self) -> dict[str, list[str]]:
        found = {}
        for name in (LAB_VARS["portal_domain_name"],):
            answer = dns.query.tcp(dns.message.make_query(name, "A"), "127.0.0.1", port=self.dns.port, timeout=5)
            found[name] = sorted(r.to_text() for rrset in answer.answer for r in rrset)
        return found

    def delete_records(self) -> None:
        update = dns.update.UpdateMessage(
            ZONE + ".", keyring=dns.tsig.Key(KEY_NAME, TSIG_SECRET), keyalgorithm="hmac-sha256"
        )
        update.delete(LAB_VARS["portal_domain_name"] + ".", "A")
        assert dns.query.tcp(update, "127.0.0.1", port=self.dns.port, timeout=5).rcode() == 0

    def normal_run(self, label: str) -> int:
        """Run site.yml to the end; returns how many tasks changed the host."""
        run = ansible_playbook("site.yml", LAB_INVENTORY, *self.args, extra_vars=self.extra, env=self.env)
        (self.log_dir / f"{label}.log").write_text(run.output)
        assert run.rc == 0, f"the run after the kill at {label} failed:\n{run.output[-5000:]}"
        return run.changed(HOST)

    def killed_run(self, task: str, label: str, start_at: str | None = None, delay: float = 0.0) -> None:
        """Run site.yml and SIGKILL its process group once `task` has started (`delay` s after its banner).

        The killed run shows skipped hosts: with `display_skipped_hosts =
        false` (ansible.cfg) the default callback holds a task's banner back
        until the task's first result, so the kill would come after the task
        had finished. Shown, the banner is printed when the task starts.
        """
        cmd = [str(BIN / "ansible-playbook"), "site.yml", "-i", str(LAB_INVENTORY), *self.args]
        cmd += ["-e", json.dumps(self.extra)]
        if start_at:
            cmd += ["--start-at-task", start_at]
        log = self.log_dir / f"{label}-killed.log"
        banner = f"TASK [{task}]"
        with log.open("w") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                # Unbuffered, so each task banner arrives when the task starts.
                env=environment({**self.env, "PYTHONUNBUFFERED": "1", "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "true"}),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            assert proc.stdout is not None
            reached = False
            for line in proc.stdout:
                out.write(line)
                if line.startswith(banner):
                    reached = True
                    time.sleep(delay)
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
            proc.wait(timeout=60)
        assert reached, f"site.yml ended (rc {proc.returncode}) before {banner}:\n{log.read_text()[-4000:]}"
        assert proc.returncode == -signal.SIGKILL


def first_task(role: str) -> str:
    """`role : name` of the role's first task in site.yml (as --list-tasks shows it), where a killed run starts."""
    listing = subprocess.run(
        [str(BIN / "ansible-playbook"), "site.yml", "-i", str(LAB_INVENTORY), "--list-tasks"],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(rf"^\s+({re.escape(role)} : .+?)\tTAGS:", listing, re.M)
    assert match, f"site.yml --list-tasks shows no task of role {role}:\n{listing}"
    return match[1]


def fingerprint(site: Site) -> dict:
    paths = " ".join(STATE_PATHS)
    listing = podman_exec(
        CONTAINER,
        "sh",
        "-c",
        # A missing path is part of the state (it simply lists nothing).
        f"find {paths} -xdev \\( -type f -o -type l \\) ! -name '*~' -printf '%p %m %u:%g %l\\n' 2>/dev/null | sort;"
        f" find {paths} -xdev -type f ! -name '*~' -print0 2>/dev/null | sort -z | xargs -0 sha256sum",
    ).stdout
    return {"files": listing, "dns": site.records(), "served": {name: served_certificate(name) for name in NAMES}}


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(LAB_CA))


def served_certificate(name: str) -> str:
    """SHA-256 of the certificate nginx serves for `name` (verified against the lab CA and the name)."""
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=5) as raw,
        tls_context().wrap_socket(raw, server_hostname=name) as tls,
    ):
        return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def get(name: str) -> int:
    """HTTP status of GET / for `name` (SNI and Host), over the published loopback port."""
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=5) as raw,
        tls_context().wrap_socket(raw, server_hostname=name) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        status_line = tls.makefile("rb").readline().decode("latin-1")
    match = re.match(r"HTTP/1\.[01] (\d{3}) ", status_line)
    if not match:
        raise http.client.BadStatusLine(status_line)
    return int(match[1])


@dataclass
class Poller:
    """Polls both names over HTTPS until stopped; keeps every failure."""

    failures: list[str] = field(default_factory=list)
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            for name in NAMES:
                try:
                    status = get(name)
                    if status >= 500:
                        self.failures.append(f"{time.strftime('%T')} {name}: HTTP {status}")
                except (OSError, ssl.SSLError, http.client.HTTPException) as err:
                    self.failures.append(f"{time.strftime('%T')} {name}: {type(err).__name__}: {err}")
            self.polls += 1
            self._stop.wait(0.5)

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("interrupted")
    key = TsigKey(KEY_NAME, TSIG_SECRET)
    fallback_label, fallback_zone = LAB_VARS["portal_domain_fallback"].split(".", 1)
    server = BindServer(
        state_dir=workdir / "bind",
        port=free_port(),
        keys=[key],
        zones=[
            Zone(ZONE, update_key=key.name),
            Zone(fallback_zone, records=(f"{fallback_label} 300 IN A {LAB_VARS['portal_domain_address']}",)),
        ],
    )
    secrets_file = workdir / "secrets.yml"
    secrets_file.write_text(
        f'vault_portal_domain_tsig_secret: "{TSIG_SECRET}"\nvault_cryptopro_pin: "{secrets.token_hex(8)}"\n'
    )
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--encrypt-vault-id", "lab", str(secrets_file)],
        check=True,
        capture_output=True,
        env=environment(),
    )
    server.start(reset_zones=True)
    try:
        with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as host_vars:
            extra = {
                **host_vars,
                "portal_domain_dns_port": server.port,
                "portal_domain_resolvers": [f"127.0.0.1:{server.port}"],
                "portal_artifacts_root": str(workdir / "artifacts"),
            }
            env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts")}
            yield Site(server, extra, ["-e", f"@{secrets_file}"], env, workdir)
    finally:
        server.stop()


def remove(path: str) -> Callable[[Site], None]:
    def undo(_site: Site) -> None:
        podman_exec(CONTAINER, "rm", "-f", path, check=True)

    return undo


def absent(path: str) -> Callable[[Site], bool]:
    def undone(_site: Site) -> bool:
        return podman_exec(CONTAINER, "test", "-e", path, check=False).returncode != 0

    return undone


def no_records(site: Site) -> bool:
    return site.records() == {LAB_VARS["portal_domain_name"]: []}


# (role, task killed, what to undo first so that task has work, how to see that work is not done).
LATER_POINTS = [
    (
        "portal_domain",
        "Send every change in one all-or-nothing update (RFC 2136, TSIG), the old records saved first",
        Site.delete_records,
        no_records,
    ),
    (
        "portal_https",
        "Write the nginx configuration for the portal names",
        remove("/etc/nginx/conf.d/esia-portal.conf"),
        absent("/etc/nginx/conf.d/esia-portal.conf"),
    ),
    (
        "cryptopro",
        "Install esia-sign, make the key, the request, the certificate and its DER export, and prove the signer",
        remove("/usr/local/bin/esia-sign"),
        absent("/usr/local/bin/esia-sign"),
    ),
    (
        "esia_client",
        "Write the ESIA client configuration (YAML and environment file), ESIA's certificates and the local fact",
        remove("/etc/esia-portal/esia-client.yml"),
        absent("/etc/esia-portal/esia-client.yml"),
    ),
]


def task_banner(role: str, name: str) -> str:
    """The task's banner text; fails at once when a role no longer has a task of that name."""
    text = "\n".join(p.read_text() for p in (REPO / "roles" / role / "tasks").glob("*.yml"))
    assert re.search(rf"- name: {re.escape(name)}\n", text), f"roles/{role}/tasks has no task named {name!r}"
    return f"{role} : {name}"


def test_killed_at_five_points_then_run_normally_converges_to_the_same_state(site: Site) -> None:
    # Point 1: the first converge of the fresh host, killed inside portal_base.
    assert no_records(site), "the fresh zone has no record of the portal name yet"
    chrony = task_banner("portal_base", "Write the chrony configuration, start chrony, wait for a synchronised clock")
    site.killed_run(chrony, "1-portal_base", delay=0.5)
    assert site.normal_run("1-portal_base") > 0, "the killed first converge left work for the next run"
    reference = fingerprint(site)
    assert reference["dns"] == {LAB_VARS["portal_domain_name"]: [LAB_VARS["portal_domain_address"]]}
    assert all(get(name) < 400 for name in NAMES), "both names serve the portal"
    assert "/etc/nginx/conf.d/esia-portal.conf" in reference["files"]

    for number, (role, task, undo, undone) in enumerate(LATER_POINTS, start=2):
        label = f"{number}-{role}"
        banner = task_banner(role, task)
        start_at = first_task(role)
        undo(site)
        assert undone(site), f"{label}: undoing the work of {task!r} did not take"
        with Poller() as poller:
            site.killed_run(banner, label, start_at=start_at)
            # The kill came before the task finished: its work is still to do,
            # and the normal run does it.
            assert undone(site), f"{label}: the killed run finished {task!r} before the kill"
            changed = site.normal_run(label)
        assert changed > 0, f"{label}: the run after the kill found nothing to do, so the kill cut nothing"
        assert poller.polls > 0
        assert poller.failures == [], f"the site stopped serving around the kill at {label}: {poller.failures[:5]}"
        assert fingerprint(site) == reference, f"the run after the kill at {label} did not reach the same state"
