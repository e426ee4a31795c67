"""playbooks/status.yml on a fresh lab host where only portal_base has run.

The report must come out (rc 0) with the steps not done yet shown as such,
must not change the host (changed=0, no file touched) in normal and check
mode, must read the operator's confirmations from the inventory, and must
report an unreachable host instead of failing. DNS comes from a BIND9 of this
test (the shared lab's zone may hold anything), artifacts go to a tmp dir.
"""

from __future__ import annotations

import json
import socket

import jsonschema
import pytest

from lab.bind import BindServer, Zone
from tests.harness import LAB_INVENTORY, REPO, ansible_playbook, lab_host, podman_exec

HOST = "lab-portal"
CONTAINER = "esia-test-status"
HTTP_PORT, HTTPS_PORT = 38480, 38943
SCHEMA = json.loads((REPO / "tools" / "status.schema.json").read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def dns_port(tmp_path_factory):
    server = BindServer(
        state_dir=tmp_path_factory.mktemp("bind"),
        port=free_port(),
        zones=[
            # the portal name points somewhere else: the report must notice
            Zone("miac99.test", records=("zapis 300 IN A 127.0.0.2",)),
            Zone("2dr.ru", records=("99 300 IN A 127.0.0.1",)),
        ],
    )
    server.start(reset_zones=True)
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def host_vars():
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        base = ansible_playbook(REPO / "playbooks" / "base.yml", LAB_INVENTORY, extra_vars=extra)
        assert base.rc == 0, base.output[-4000:]
        yield extra


@pytest.fixture
def run_status(host_vars, dns_port, tmp_path):
    def run(*args: str, **extra):
        extra_vars = {
            **host_vars,
            "portal_domain_resolvers": [f"127.0.0.1:{dns_port}"],
            "portal_artifacts_root": str(tmp_path / "artifacts"),
            **extra,
        }
        result = ansible_playbook(REPO / "playbooks" / "status.yml", LAB_INVENTORY, *args, extra_vars=extra_vars)
        report = tmp_path / "artifacts" / "99" / "status.json"
        document = json.loads(report.read_text()) if report.exists() else None
        return result, document

    return run


def items_of(document: dict) -> dict[str, dict]:
    (host,) = document["hosts"]
    return {item["id"]: item for item in host["items"]}


def touched_files(marker: str) -> list[str]:
    """Files on the host newer than the marker, where a role or a mistake would write."""
    found = podman_exec(
        CONTAINER, "find", "/etc", "/usr/local", "/var/lib/esia-portal", "/root", "-newer", marker, "-not", "-type", "d"
    )
    return [line for line in found.stdout.splitlines() if line != marker and "/.ansible/" not in line]


def test_fresh_host_reports_what_is_not_done(run_status, tmp_path):
    podman_exec(CONTAINER, "touch", "/root/status-marker", check=True)
    run, document = run_status()
    assert run.rc == 0, run.output[-4000:]
    assert run.changed(HOST) == 0 and run.failed(HOST) == 0
    assert touched_files("/root/status-marker") == []
    jsonschema.validate(document, SCHEMA)
    assert document["region"] == "99" and document["hosts"][0]["host"] == HOST
    items = items_of(document)
    assert {k: v["state"] for k, v in items.items()} == {
        "esia_org_registered": "pending",
        "esia_is_registered": "pending",
        "gost_certificate": "not_done",
        "gost_certificate_registered": "not_done",
        "application_generated": "not_done",
        "application_sent": "not_done",
        "test_access_granted": "not_done",
        "dns": "not_done",
        "https": "not_done",
        "fallback": "not_done",
        "clock": "done",
        "esia_selfcheck": "not_done",
    }
    assert "esia_cryptopro.fact" in items["gost_certificate"]["evidence"]
    assert "127.0.0.2" in items["dns"]["evidence"]  # the answer of this test's BIND
    assert f"127.0.0.1:{HTTPS_PORT}" in items["https"]["evidence"]  # status_https_port follows the lab port
    assert str(tmp_path / "artifacts" / "99" / "application") in items["application_generated"]["evidence"]
    assert "esia-sign" in items["esia_selfcheck"]["evidence"]
    # no expiry state on a host where roles/portal_monitoring has not run: said, with what to run
    expiry = document["hosts"][0]["expiry"]
    assert expiry["level"] == "error" and expiry["entries"] == []
    assert (
        expiry["error"].startswith("/var/lib/esia-onboard/expiry.json")
        and "playbooks/monitoring.yml" in expiry["error"]
    )
    # the table in the run output and the readable page
    assert "Регион 99" in run.output and "[ ] домен" in run.output
    page = (tmp_path / "artifacts" / "99" / "status.html").read_text()
    assert 'data-item="clock" data-state="done"' in page


def test_check_mode_gives_the_same_report_and_changes_nothing(run_status):
    podman_exec(CONTAINER, "touch", "/root/status-marker-check", check=True)
    run, document = run_status("--check", "--diff")
    assert run.rc == 0, run.output[-4000:]
    assert run.changed(HOST) == 0
    assert touched_files("/root/status-marker-check") == []
    items = items_of(document)
    assert items["clock"]["state"] == "done" and items["gost_certificate"]["state"] == "not_done"


def test_confirmations_come_from_the_inventory(run_status):
    run, document = run_status(status_esia_org_registered="2026-01-15", status_esia_is_registered="yes")
    assert run.rc == 0, run.output[-4000:]
    items = items_of(document)
    assert items["esia_org_registered"]["state"] == "done"
    assert items["esia_org_registered"]["confirmed"] == "2026-01-15"
    assert items["esia_is_registered"]["state"] == "not_done"
    assert "status_esia_is_registered" in items["esia_is_registered"]["evidence"]


def test_unreachable_host_is_reported_not_fatal(run_status):
    run, document = run_status(ansible_host="esia-test-status-absent")
    assert run.rc == 0, run.output[-4000:]
    items = items_of(document)
    for item_id in ("gost_certificate", "clock", "esia_selfcheck"):
        assert items[item_id]["state"] == "not_done"
        assert "хост недоступен" in items[item_id]["evidence"]
    # the controller-side checks still ran
    assert "127.0.0.2" in items["dns"]["evidence"]
