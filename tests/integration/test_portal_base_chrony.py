"""portal_base on a throw-away lab host: time servers that never synchronise
leave the host's chrony exactly as it was.

The host is first converged with the lab's settings (chrony synchronised on
its local reference). A second run asks for a server nothing answers on and
no local reference: the run must fail, name what was put back and why, and
leave /etc/chrony/chrony.conf byte for byte as before with chronyd active.
"""

from __future__ import annotations

import re

import pytest

from tests.harness import LAB_INVENTORY, ansible_playbook, lab_host, podman_exec

CONTAINER = "esia-test-chrony"
HTTP_PORT, HTTPS_PORT = 38690, 38691
HOST = "lab-portal"
CHRONY_FILES = (
    "/etc/chrony/chrony.conf",
    "/etc/default/chrony",
    "/etc/systemd/system/chrony.service.d/shared-clock.conf",
)


@pytest.fixture(scope="module")
def host():
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        first = ansible_playbook("playbooks/base.yml", LAB_INVENTORY, extra_vars=extra)
        assert first.rc == 0, first.output[-4000:]
        yield extra


def fingerprint(container: str) -> dict[str, str]:
    """Content hash, mode and owner of every chrony file the role writes."""
    found = podman_exec(container, "stat", "-c", "%n %a %U:%G", *CHRONY_FILES).stdout.splitlines()
    sums = podman_exec(container, "sha256sum", *CHRONY_FILES).stdout.splitlines()
    return {"stat": "\n".join(found), "sha256": "\n".join(sums)}


def test_servers_that_never_synchronise_leave_the_old_configuration_running(host, tmp_path):
    before = fingerprint(CONTAINER)
    conf_before = podman_exec(CONTAINER, "cat", "/etc/chrony/chrony.conf", check=True).stdout
    assert "local stratum" in conf_before, "the lab's chrony follows its local reference"

    broken = ansible_playbook(
        "playbooks/base.yml",
        LAB_INVENTORY,
        extra_vars={
            **host,
            # Nothing serves NTP on the host's loopback, and no local reference: never synchronised.
            "portal_base_ntp_servers": ["127.0.0.1"],
            "portal_base_ntp_local_stratum": None,
            "portal_base_time_sync_timeout": 6,
        },
    )

    assert broken.rc != 0
    assert broken.failed(HOST) == 1
    text = re.sub(r"\s+", " ", broken.output)
    assert "chrony did not report a synchronised clock within portal_base_time_sync_timeout=6 s" in text, text[-3000:]
    assert 'portal_base_ntp_servers=["127.0.0.1"]' in text
    assert (
        "Put back the previous /etc/chrony/chrony.conf (removed where this run created them) and restarted chrony"
        in text
    )

    assert podman_exec(CONTAINER, "cat", "/etc/chrony/chrony.conf", check=True).stdout == conf_before
    assert fingerprint(CONTAINER) == before
    assert podman_exec(CONTAINER, "systemctl", "is-active", "chrony").stdout.strip() == "active"
    # chronyd runs on the restored file, not on the refused one.
    sources = podman_exec(CONTAINER, "chronyc", "-n", "sources").stdout
    assert "127.0.0.1" not in sources, sources
    # The refused file's predecessor is kept beside it as the template's backup.
    backups = podman_exec(CONTAINER, "sh", "-c", "ls /etc/chrony/ | grep -c '^chrony.conf\\..*~$'").stdout.strip()
    assert int(backups or 0) >= 1

    again = ansible_playbook("playbooks/base.yml", LAB_INVENTORY, extra_vars=host)
    assert again.rc == 0, again.output[-4000:]
    assert again.changed(HOST) == 0, again.output[-4000:]


def test_an_account_the_role_did_not_create_is_refused_and_nothing_is_changed(host):
    # Someone else's service account with the name the inventory asks for.
    podman_exec(
        CONTAINER, "useradd", "--system", "--home-dir", "/srv/other", "--shell", "/bin/bash", "esia-other", check=True
    )
    before = fingerprint(CONTAINER)

    refused = ansible_playbook(
        "playbooks/base.yml",
        LAB_INVENTORY,
        extra_vars={
            **host,
            "portal_service_user": "esia-other",
            "portal_service_group": "esia-other-group",
            "portal_service_home": "/var/lib/esia-other",
        },
    )

    assert refused.rc != 0 and refused.failed(HOST) == 1
    text = re.sub(r"\s+", " ", refused.output)
    assert "portal_service_user: got 'esia-other'; is an existing system account on this host" in text, text[-3000:]
    assert "that the role did not create" in text and "Nothing was changed." in text
    assert podman_exec(CONTAINER, "getent", "group", "esia-other-group").returncode != 0
    assert podman_exec(CONTAINER, "test", "-e", "/var/lib/esia-other").returncode != 0
    assert podman_exec(CONTAINER, "getent", "passwd", "esia-other").stdout.split(":")[5] == "/srv/other"
    assert fingerprint(CONTAINER) == before
