"""roles/portal_monitoring on one throw-away lab host, judged by the real tools.

The test puts certificates where the roles would (a TLS fullchain for each
name, the GOST certificate in DER, an ESIA certificate) and the local facts
that name them, with a CryptoPro licence, then runs playbooks/monitoring.yml
with Debian's zabbix-agent installed by the role. Checked:
- `promtool check metrics` on the textfile fetched from the host, and its
  notAfter values against `openssl x509 -enddate` run on the host;
- `zabbix_agentd -t` on the host (the agent's own test mode, with Debian's
  agent config that includes the items): discovery lists every entry, and
  days_left / status agree with openssl;
- the systemd timer is enabled and the service refreshes the export without
  Ansible (a renewed certificate shows after `systemctl start`);
- a second run and --check --diff change nothing; the readiness report
  (playbooks/status.yml) reads the same state file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess

import pytest

from tests.certs import gost_workdir, make_cert
from tests.harness import LAB_INVENTORY, REPO, ansible_playbook, environment, lab_host, podman_exec

HOST = "lab-portal"
CONTAINER = "esia-test-monitoring"
HTTP_PORT, HTTPS_PORT = 38481, 38944
TLS_DIR = "/etc/ssl/esia-portal"
ZABBIX_DIR = "/etc/zabbix/zabbix_agentd.conf.d"  # what Debian's zabbix_agentd.conf includes
TEXTFILE = "/var/lib/prometheus/node-exporter/esia_onboard.prom"
STATE = "/var/lib/esia-onboard/expiry.json"
LICENCE_END = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).date().isoformat()

# kind, name, path on the host
ENTRIES = [
    ("tls", "zapis.miac99.test", f"{TLS_DIR}/zapis.miac99.test.fullchain.pem"),
    ("tls", "99.2dr.ru", f"{TLS_DIR}/99.2dr.ru.fullchain.pem"),
    ("gost", "esia_99", "/var/lib/esia-onboard-test/esia_99.cer"),
    ("esia", "esia-test", "/etc/esia-onboard-test/esia-test.pem"),
]


def copy_to_host(local, remote: str) -> None:
    podman_exec(CONTAINER, "mkdir", "-p", remote.rsplit("/", 1)[0], check=True)
    subprocess.run(["podman", "cp", str(local), f"{CONTAINER}:{remote}"], env=environment(), check=True)


def write_on_host(remote: str, text: str) -> None:
    podman_exec(CONTAINER, "mkdir", "-p", remote.rsplit("/", 1)[0], check=True)
    subprocess.run(
        ["podman", "exec", "-i", CONTAINER, "sh", "-c", f"cat > {remote}"],
        input=text,
        text=True,
        env=environment(),
        check=True,
    )


def host_enddate(path: str) -> int:
    """notAfter of a file on the host as the host's openssl reads it (Unix time)."""
    form = ["-inform", "DER"] if path.endswith(".cer") else []
    out = podman_exec(CONTAINER, "openssl", "x509", "-noout", "-enddate", *form, "-in", path, check=True).stdout
    text = out.strip().split("=", 1)[1]
    return int(dt.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC).timestamp())


def agent_test(key: str) -> str:
    """The value `zabbix_agentd -t` prints for a key ("key   [t|value]")."""
    out = podman_exec(CONTAINER, "zabbix_agentd", "-c", "/etc/zabbix/zabbix_agentd.conf", "-t", key)
    assert out.returncode == 0, out.stdout + out.stderr
    match = re.search(r"\[t\|(.*)\]\s*$", out.stdout.strip(), re.DOTALL)
    assert match, f"{key}: {out.stdout}{out.stderr}"
    return match[1]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    plain = tmp_path_factory.mktemp("monitoring-tls")
    ca = make_cert(plain, "rsa", ca=True, name="ca", subject="/CN=Lab CA")
    main = make_cert(plain, "ec", issuer=ca, name="main", subject="/CN=zapis.miac99.test", days=20)
    fallback = make_cert(plain, "ec", issuer=ca, name="fallback", subject="/CN=99.2dr.ru", days=200)
    renewed = make_cert(plain, "ec", issuer=ca, name="renewed", subject="/CN=zapis.miac99.test", days=90)
    esia = make_cert(plain, "rsa", name="esia", subject="/CN=ESIA test", days=3)
    gost = make_cert(gost_workdir(tmp_path_factory, "monitoring-gost"), "gost2012_256", subject="/CN=esia_99", days=400)
    chain = {}
    for name, leaf in (("main", main), ("fallback", fallback), ("renewed", renewed)):
        chain[name] = plain / f"{name}.fullchain.pem"
        chain[name].write_text(leaf.pem + ca.pem)
    return {**chain, "gost": gost.der_path, "esia": esia.pem_path}


@pytest.fixture(scope="module")
def host(certs):
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        copy_to_host(certs["main"], ENTRIES[0][2])
        copy_to_host(certs["fallback"], ENTRIES[1][2])
        copy_to_host(certs["gost"], ENTRIES[2][2])
        copy_to_host(certs["esia"], ENTRIES[3][2])
        facts = {
            "portal_https": {
                "certificates": {
                    "main": {"certificate": ENTRIES[0][2], "names": ["zapis.miac99.test"]},
                    "fallback": {"certificate": ENTRIES[1][2], "names": ["99.2dr.ru"]},
                }
            },
            "esia_cryptopro": {
                "backend": "cryptopro",
                "container": "esia_99",
                "certificate_der": ENTRIES[2][2],
                "license_type": "Demo",
                "license_expires": LICENCE_END,
            },
            "esia_client": {"esia_certificates": [ENTRIES[3][2]]},
        }
        for name, fact in facts.items():
            write_on_host(f"/etc/ansible/facts.d/{name}.fact", json.dumps(fact))
        extra = {
            **extra,
            "portal_monitoring_zabbix_agent_install": True,
            "portal_monitoring_zabbix_include_dir": ZABBIX_DIR,
        }
        first = ansible_playbook(REPO / "playbooks" / "monitoring.yml", LAB_INVENTORY, extra_vars=extra)
        assert first.rc == 0, first.output[-5000:]
        assert first.changed(HOST) > 0
        yield extra


def test_second_run_and_check_mode_change_nothing(host):
    again = ansible_playbook(REPO / "playbooks" / "monitoring.yml", LAB_INVENTORY, extra_vars=host)
    assert again.rc == 0 and again.changed(HOST) == 0, again.output[-4000:]
    check = ansible_playbook(REPO / "playbooks" / "monitoring.yml", LAB_INVENTORY, "--check", "--diff", extra_vars=host)
    assert check.rc == 0 and check.changed(HOST) == 0, check.output[-4000:]


def test_textfile_passes_promtool_and_matches_openssl(host, tmp_path):
    text = podman_exec(CONTAINER, "cat", TEXTFILE, check=True).stdout
    fetched = tmp_path / "esia_onboard.prom"
    fetched.write_text(text)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (Makefile APT_PACKAGES)"
    checked = subprocess.run([promtool, "check", "metrics"], stdin=fetched.open(), capture_output=True, text=True)
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stdout + checked.stderr
    samples = {}
    for line in text.splitlines():
        match = re.match(
            r'esia_onboard_certificate_expiry_timestamp_seconds\{kind="(.*?)",name="(.*?)",path="(.*?)"\} (\d+)$', line
        )
        if match:
            samples[match.groups()[:3]] = int(match[4])
    assert samples == {entry: host_enddate(entry[2]) for entry in ENTRIES}
    licence = int(dt.datetime.fromisoformat(LICENCE_END).replace(tzinfo=dt.UTC).timestamp())
    assert f'esia_onboard_licence_expiry_timestamp_seconds{{kind="cryptopro",name="csp"}} {licence}' in text
    mode = podman_exec(CONTAINER, "stat", "-c", "%a %U", TEXTFILE, STATE, check=True).stdout.split("\n")
    assert mode[:2] == ["644 root", "644 root"]


def test_zabbix_agent_test_mode_reads_the_items(host):
    discovered = json.loads(agent_test("esia.onboard.discovery"))["data"]
    assert {(d["{#KIND}"], d["{#NAME}"], d["{#PATH}"]) for d in discovered} >= set(ENTRIES)
    assert {"{#KIND}": "cryptopro", "{#NAME}": "csp"}.items() <= next(
        d for d in discovered if d["{#TYPE}"] == "licence"
    ).items()
    now = dt.datetime.now(dt.UTC).timestamp()
    for kind, name, path in ENTRIES:
        days = int(agent_test(f"esia.onboard.days_left[{kind},{name}]"))
        assert days == (host_enddate(path) - int(now)) // 86400, (kind, name)
    assert agent_test("esia.onboard.status[tls,zapis.miac99.test]") == "warning"  # 20 days: amber
    assert agent_test("esia.onboard.status[tls,99.2dr.ru]") == "ok"
    assert agent_test("esia.onboard.status[esia,esia-test]") == "critical"  # 3 days: red
    assert agent_test("esia.onboard.status[cryptopro,csp]") == "critical"
    assert int(agent_test("esia.onboard.problems")) == 3
    unknown = podman_exec(CONTAINER, "zabbix_agentd", "-t", "esia.onboard.days_left[tls,nothing]").stdout
    assert "no entry tls,nothing" in unknown


def test_timer_refreshes_the_export_without_ansible(host, certs):
    enabled = podman_exec(CONTAINER, "systemctl", "is-enabled", "esia-onboard-expiry.timer").stdout.strip()
    active = podman_exec(CONTAINER, "systemctl", "is-active", "esia-onboard-expiry.timer").stdout.strip()
    assert (enabled, active) == ("enabled", "active")
    copy_to_host(certs["renewed"], ENTRIES[0][2])  # what a renewal does: a new file in the same place
    podman_exec(CONTAINER, "systemctl", "start", "esia-onboard-expiry.service", check=True)
    state = json.loads(podman_exec(CONTAINER, "cat", STATE, check=True).stdout)
    (entry,) = [e for e in state["entries"] if e["name"] == "zapis.miac99.test"]
    assert entry["not_after_timestamp"] == host_enddate(ENTRIES[0][2]) and entry["level"] == "ok"
    assert agent_test("esia.onboard.status[tls,zapis.miac99.test]") == "ok"
    copy_to_host(certs["main"], ENTRIES[0][2])
    podman_exec(CONTAINER, "systemctl", "start", "esia-onboard-expiry.service", check=True)


def test_readiness_report_shows_the_same_expiries(host, tmp_path):
    run = ansible_playbook(
        REPO / "playbooks" / "status.yml",
        LAB_INVENTORY,
        extra_vars={
            **host,
            "portal_artifacts_root": str(tmp_path / "artifacts"),
            "portal_domain_resolvers": ["127.0.0.1:9"],  # nothing answers: DNS is not what this test is about
        },
    )
    assert run.rc == 0 and run.changed(HOST) == 0, run.output[-4000:]
    (entry,) = json.loads((tmp_path / "artifacts" / "99" / "status.json").read_text())["hosts"]
    shown = {(e["kind"], e["name"]): e for e in entry["expiry"]["entries"]}
    now = int(dt.datetime.now(dt.UTC).timestamp())
    for kind, name, path in ENTRIES:
        assert shown[kind, name]["days_left"] == (host_enddate(path) - now) // 86400
    assert shown["tls", "zapis.miac99.test"]["level"] == "warning"
    assert shown["esia", "esia-test"]["level"] == "critical"
    page = (tmp_path / "artifacts" / "99" / "status.html").read_text()
    assert 'data-expiry="esia/esia-test" data-level="critical"' in page
