"""The whole site on a fresh lab host, the way an operator meets it:

1. `site.yml --check --diff` on a host nothing was done to runs to the end;
2. a real run, at -vvv, with sentinel values for every secret (from a vault),
   leaks none of them: not in the output, not in cached facts, not in
   controller artifacts, and on the host only in their 0600 destination;
3. `site.yml --check --diff` on the converged host reports changed=0.

All three run twice: under Ansible's own linear strategy (the default) and
under Mitogen's (`ANSIBLE_STRATEGY=mitogen_linear`, the opt-in fast path),
which must keep every secret as well and really be Mitogen on the host.

A separate test interrupts a run midway and shows the next run converges.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time

import pytest

from lab.bind import BindServer, TsigKey, Zone
from tests.harness import BIN, LAB_INVENTORY, REPO, ansible_playbook, environment, lab_host, podman_exec

TSIG_SENTINEL = base64.b64encode(b"SENTINEL-tsig-7f3a9c1e-do-not-leak!").decode()
PIN_SENTINEL = "SENTINEL-pin-5b2d8e4f"
SENTINELS = (TSIG_SENTINEL, PIN_SENTINEL)
BIND_PORT = 25410
HOST = "lab-portal"


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    key = TsigKey("miac99-portal-update", TSIG_SENTINEL)
    server = BindServer(
        state_dir=tmp_path_factory.mktemp("bind"),
        port=BIND_PORT,
        keys=[key],
        zones=[Zone("miac99.test", update_key=key.name), Zone("2dr.ru", records=("99 300 IN A 127.0.0.1",))],
    )
    server.start(reset_zones=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def secrets_file(tmp_path_factory):
    """The sentinels as an encrypted vault, as an operator would keep them."""
    workdir = tmp_path_factory.mktemp("vault")
    plain = workdir / "secrets.yml"
    plain.write_text(f'vault_portal_domain_tsig_secret: "{TSIG_SENTINEL}"\nvault_cryptopro_pin: "{PIN_SENTINEL}"\n')
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--encrypt-vault-id", "lab", str(plain)],
        check=True,
        capture_output=True,
        env=environment(),
    )
    assert PIN_SENTINEL not in plain.read_text()
    return plain


def site_args(host_vars: dict, dns: BindServer, artifacts, secrets_file) -> tuple[list[str], dict, dict]:
    extra = {
        **host_vars,
        "portal_domain_dns_port": dns.port,
        "portal_domain_resolvers": [f"127.0.0.1:{dns.port}"],
        "portal_artifacts_root": str(artifacts),
    }
    env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(artifacts.parent / "facts")}
    return ["-e", f"@{secrets_file}"], extra, env


def grep_host(container: str, needle: str) -> list[str]:
    found = podman_exec(
        container,
        "grep",
        "-rlsF",
        "--exclude-dir=proc",
        "--exclude-dir=sys",
        "--exclude-dir=dev",
        "--exclude-dir=run",
        needle,
        "/",
    )
    return [line for line in found.stdout.splitlines() if line]


STRATEGIES = {
    # strategy: (container, http port, https port), what runs modules on the host
    # linear over the lab's pipelined ssh: the AnsiballZ payload arrives on python3's stdin
    "linear": (("esia-test-site", 38580, 38581), "/usr/bin/python3"),
    "mitogen_linear": (("esia-test-site-mitogen", 38584, 38585), "(mitogen:"),
}

# Run on the host by the task under test: the parent of a command is the
# pipelined AnsiballZ payload (python3 reading its stdin, no file) under
# `linear`, Mitogen's long-lived interpreter under Mitogen.
PARENT_PROBE = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Show the process that runs modules on the host
      ansible.builtin.shell: tr '\\0' ' ' < /proc/$PPID/cmdline
      changed_when: false
      register: parent
    - name: Print it
      ansible.builtin.debug:
        msg: "PARENT={{ parent.stdout }}"
"""


def module_runner(extra: dict, env: dict, tmp_path) -> str:
    probe = tmp_path / "parent-probe.yml"
    probe.write_text(PARENT_PROBE)
    run = ansible_playbook(probe, LAB_INVENTORY, extra_vars=extra, env=env)
    assert run.rc == 0, run.output[-3000:]
    return run.output.split("PARENT=", 1)[1].splitlines()[0]


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_check_then_converge_without_leaks_then_check(strategy, dns, secrets_file, tmp_path):
    artifacts = tmp_path / "artifacts"
    host, runner_marker = STRATEGIES[strategy]
    with lab_host(*host) as host_vars:
        args, extra, env = site_args(host_vars, dns, artifacts, secrets_file)
        env["ANSIBLE_STRATEGY"] = strategy
        runner = module_runner(extra, env, tmp_path)
        assert runner_marker in runner, f"under {strategy}, modules ran in {runner!r}, not {runner_marker!r}"
        # pipelined: no module file written on the host; and no Mitogen unless asked for
        assert "AnsiballZ_" not in runner, runner
        assert ("(mitogen:" in runner) == (strategy == "mitogen_linear"), runner

        fresh_check = ansible_playbook("site.yml", LAB_INVENTORY, "--check", "--diff", *args, extra_vars=extra, env=env)
        assert fresh_check.rc == 0, fresh_check.output[-6000:]
        assert fresh_check.failed(HOST) == 0

        run = ansible_playbook("site.yml", LAB_INVENTORY, "-vvv", *args, extra_vars=extra, env=env)
        assert run.rc == 0, run.output[-6000:]
        for sentinel in SENTINELS:
            assert sentinel not in run.output, "a secret reached the -vvv output"

        facts_dir = tmp_path / "facts"
        cached = "".join(p.read_text() for p in facts_dir.rglob("*") if p.is_file())
        assert cached, "the fact cache should have been written"
        for sentinel in SENTINELS:
            assert sentinel not in cached, "a secret reached the fact cache"
        for path in artifacts.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for sentinel in SENTINELS:
                    assert sentinel.encode() not in data, f"a secret reached the controller artifact {path}"

        container = host_vars["ansible_host"]
        assert grep_host(container, TSIG_SENTINEL) == [], "the TSIG secret must never reach the portal host"
        pin_files = grep_host(container, PIN_SENTINEL)
        assert len(pin_files) == 1, f"the PIN belongs in exactly one file, found {pin_files}"
        mode = podman_exec(container, "stat", "-c", "%a %U", pin_files[0]).stdout.split()
        assert mode[0] == "600", f"{pin_files[0]} has mode {mode[0]}"

        converged_check = ansible_playbook(
            "site.yml", LAB_INVENTORY, "--check", "--diff", *args, extra_vars=extra, env=env
        )
        assert converged_check.rc == 0, converged_check.output[-6000:]
        assert converged_check.changed(HOST) == 0, converged_check.output[-6000:]

        # The opt-in private-key export gives its password on stdin, never in a command line or an
        # environment that -vvv would show (issue 13, point 7).
        export_vars = {**extra, "cryptopro_export_private_key": True}
        export = ansible_playbook(
            "playbooks/cryptopro.yml", LAB_INVENTORY, "-vvv", *args, extra_vars=export_vars, env=env
        )
        assert export.rc == 0, export.output[-6000:]
        assert PIN_SENTINEL not in export.output, "the PIN reached the -vvv output of the key export"


def test_interrupted_run_converges_on_the_next(dns, secrets_file, tmp_path):
    artifacts = tmp_path / "artifacts"
    with lab_host("esia-test-interrupt", 38582, 38583) as host_vars:
        args, extra, env = site_args(host_vars, dns, artifacts, secrets_file)
        import json

        cmd = [
            str(BIN / "ansible-playbook"),
            "site.yml",
            "-i",
            str(LAB_INVENTORY),
            *args,
            "-e",
            json.dumps(extra),
        ]
        log = tmp_path / "interrupted.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=environment(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            # Interrupt as the HTTPS role starts changing the host: packages,
            # time sync and DNS are done, nginx and the key are half-way.
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and proc.poll() is None and "portal_https :" not in log.read_text():
                time.sleep(0.5)
            time.sleep(3)
            assert proc.poll() is None, "the run ended before it could be interrupted:\n" + log.read_text()[-3000:]
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        again = ansible_playbook("site.yml", LAB_INVENTORY, *args, extra_vars=extra, env=env)
        assert again.rc == 0, again.output[-6000:]
        settled = ansible_playbook("site.yml", LAB_INVENTORY, *args, extra_vars=extra, env=env)
        assert settled.rc == 0 and settled.changed(HOST) == 0, settled.output[-6000:]
