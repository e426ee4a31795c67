"""The PIN never appears in any process's argv or environment on the host
(issue 13, point 7), for the openssl_gost backend and for the cryptopro
backend against the CryptoPro TEST DOUBLE.

A sampler started inside the lab host reads /proc/*/cmdline and
/proc/*/environ of every process, over and over, for the whole of a converge
of the cryptopro role (which ends with the signer's self-check) and a burst of
esia-sign calls as root and as the service account. The sentinel PIN must
never be seen. The sampler proves it can see: a control string put into the
argv and into the environment of a short-lived process must be found.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.cryptopro.build_archive import build_archive
from tests.harness import LAB_INVENTORY, ansible_playbook, environment, lab_host

pytestmark = pytest.mark.slow

CONTAINER = "esia-test-pin-exposure"
HTTP_PORT, HTTPS_PORT = 38296, 38759
PIN = "Sentinel-PIN-" + os.urandom(6).hex()
CONTROL = "Control-" + os.urandom(6).hex()
AS_SERVICE_ACCOUNT = ("setpriv", "--reuid=esia-portal", "--regid=esia-portal", "--init-groups", "--")

# Runs inside the lab host as root until /run/pin-sampler.stop exists.
SAMPLER = r"""
import json, os, sys, time
with open("/run/pin-sampler.needles", "rb") as handle:  # not on this process's own command line
    pin, control = handle.read().split(b"\n")[:2]
needles = {"pin": pin, "control": control}
seen, samples, processes = [], 0, set()
while not os.path.exists("/run/pin-sampler.stop"):
    samples += 1
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            processes.add(pid)
            for name, needle in needles.items():
                if needle in data:
                    command = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].decode(errors="replace")
                    seen.append({"needle": name, "part": part, "pid": pid, "command": command})
    time.sleep(0.002)
with open("/run/pin-sampler.json", "w") as out:
    json.dump({"samples": samples, "processes": len(processes), "seen": seen}, out)
"""


def host(*cmd: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", "exec", "-i", CONTAINER, *cmd], input=stdin, capture_output=True, env=environment(), check=check
    )


class Sampler:
    """The sampler process in the lab host, for the duration of a `with` block."""

    def __enter__(self) -> Sampler:
        host("rm", "-f", "/run/pin-sampler.stop", "/run/pin-sampler.json")
        host("sh", "-c", "umask 077 && cat > /run/pin-sampler.needles", stdin=f"{PIN}\n{CONTROL}\n".encode())
        self.proc = subprocess.Popen(["podman", "exec", CONTAINER, "python3", "-c", SAMPLER], env=environment())
        time.sleep(1)
        # Positive control: the sampler must see a string in an argv and in an environment.
        host("sh", "-c", 'sleep 1.5; : "$0"', CONTROL)
        host("env", f"PIN_SAMPLER_CONTROL={CONTROL}", "sleep", "1.5")
        return self

    def __exit__(self, *exc) -> None:
        host("touch", "/run/pin-sampler.stop")
        self.proc.wait(timeout=60)
        self.report = json.loads(host("cat", "/run/pin-sampler.json").stdout)

    def check(self) -> None:
        seen = self.report["seen"]
        assert self.report["samples"] > 20, self.report
        assert {("control", "cmdline"), ("control", "environ")} <= {(s["needle"], s["part"]) for s in seen}, (
            "the sampler did not see its control strings: it could not have seen the PIN either"
        )
        leaks = [s for s in seen if s["needle"] == "pin"]
        assert leaks == [], f"the PIN was in a process's argv or environment: {leaks[:5]}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[dict]:
    workdir = tmp_path_factory.mktemp("pin-exposure")
    archive = build_archive(workdir / "linux-amd64_deb.tgz", "5.0.99999-1")
    gamma = workdir / "kis_1"
    gamma.write_bytes(os.urandom(864))  # stands in for genkpim's kis_1 (see test_cryptopro_double.py)
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        extra = {**extra, "portal_artifacts_root": str(workdir / "artifacts"), "cryptopro_pin": PIN}
        env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts")}
        base = ansible_playbook("playbooks/base.yml", extra_vars=extra, env=env)
        assert base.rc == 0, base.output[-3000:]
        yield {
            "extra": extra,
            "env": env,
            "double": {
                "cryptopro_backend": "cryptopro",
                "cryptopro_container": "esia_pin",
                "cryptopro_certificate_source": "selfsigned",
                "cryptopro_exportable": True,
                "cryptopro_export_private_key": True,
                "cryptopro_distribution": str(archive),
                "cryptopro_distribution_sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
                "cryptopro_rng_gamma_file": str(gamma),
            },
            "workdir": workdir,
        }


def converge_and_sign(lab: dict, more: dict) -> None:
    # -v shows cryptopro_key's result: the self-check's probe (signed and verified as the service
    # account in both forms) is in it, the PIN is not.
    run = ansible_playbook(
        "playbooks/cryptopro.yml", LAB_INVENTORY, "-v", extra_vars={**lab["extra"], **more}, env=lab["env"]
    )
    assert run.rc == 0, run.output[-4000:]
    assert "esia-onboard self-check" in run.output  # the self-check ran
    assert "tamper_rejected" in run.output
    assert PIN not in run.output
    for index in range(6):
        for prefix in ((), AS_SERVICE_ACCOUNT):
            for mode in ("v2", "v1"):
                signed = host(*prefix, "esia-sign", "--mode", mode, stdin=f"burst {index}".encode())
                assert signed.stdout.strip(), signed.stderr


def test_openssl_gost_converge_self_check_and_signatures_keep_the_pin_out_of_argv_and_environ(lab):
    with Sampler() as sampler:
        converge_and_sign(lab, {"cryptopro_export_private_key": True})
    sampler.check()


def test_cryptopro_double_converge_self_check_and_signatures_keep_the_pin_out_of_argv_and_environ(lab):
    with Sampler() as sampler:
        converge_and_sign(lab, lab["double"])
    sampler.check()
    # The double's own call log (argv and environ of every call) agrees, and the PIN did reach it.
    logs = host("sh", "-c", "cat /var/log/cprocsp-double/calls-*.log").stdout.decode().splitlines()
    calls = [json.loads(line) for line in logs]
    assert any(c["tool"] == "csptest" and "-newkeyset" in c["argv"] for c in calls)
    assert any(c["tool"] == "certmgr" and "-pfx" in c["argv"] for c in calls)
    assert all(PIN not in json.dumps(c) for c in calls)
    assert Path(lab["workdir"] / "artifacts").exists()
