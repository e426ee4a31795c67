"""portal_domain against a real BIND9 on 127.0.0.1 started for this module.

Every test gets zones with random names the role has never seen. The zone is
read back with plain dnspython queries (not the role's own module), and
BIND's update log shows what was (not) sent.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
import yaml

from lab.bind import BindServer, TsigKey, Zone
from tests.harness import PlaybookRun, ansible_playbook

PLAYBOOK = "playbooks/domain.yml"
HOST = "testportal"
FALLBACK_ADDRESS = "127.0.0.1"
PORTAL_ADDRESS = "127.0.0.1"
TAG = secrets.token_hex(3)
REGION = "4" + str(secrets.randbelow(9) + 1)
OTHER_REGION = "5" + str(secrets.randbelow(9) + 1)


def free_port(start: int = 25600, end: int = 25999) -> int:
    """A loopback port free for both TCP and UDP, from a random starting point."""
    span = end - start
    first = secrets.randbelow(span)
    for offset in range(span):
        port = start + (first + offset) % span
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            ):
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port in {start}-{end}")


def zone_name(purpose: str) -> str:
    return f"miac-{purpose}-{TAG}.test"


OPEN_ZONES = ("create", "change", "check", "tsig", "down", "outside", "fallback")
POLICY_ZONE = zone_name("policy")
NATIONAL_ZONE = f"miac{TAG}.ru"


@dataclass
class Lab:
    server: BindServer
    key: TsigKey

    @property
    def port(self) -> int:
        return self.server.port

    def rrset(self, name: str, rdtype: str = "A") -> list[str]:
        query = dns.message.make_query(name, rdtype)
        answer = dns.query.tcp(query, "127.0.0.1", port=self.port, timeout=5)
        found = [r for r in answer.answer if r.rdtype == dns.rdatatype.from_text(rdtype)]
        return sorted(item.to_text() for r in found for item in r)

    def serial(self, zone: str) -> int:
        answer = dns.query.tcp(dns.message.make_query(zone, "SOA"), "127.0.0.1", port=self.port, timeout=5)
        return answer.answer[0][0].serial

    def log(self) -> str:
        return self.server.log_file.read_text() if self.server.log_file.exists() else ""

    def updates_of(self, zone: str, log: str | None = None) -> list[str]:
        return [line for line in (log or self.log()).splitlines() if f"updating zone '{zone}/IN'" in line]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    key = TsigKey(f"portal-{TAG}", base64.b64encode(secrets.token_bytes(32)).decode())
    zones = [Zone(zone_name(p), update_key=key.name) for p in OPEN_ZONES]
    zones += [
        Zone(NATIONAL_ZONE, update_key=key.name),
        # Only the portal name itself may be changed with the key, not aliases.
        Zone(POLICY_ZONE, update_policy=(f"grant {key.name} name zapis.{POLICY_ZONE}. A AAAA",)),
        # Read-only stand-in for 2dr.ru: one fallback pointing at the portal, one elsewhere.
        Zone("2dr.ru", records=(f"{REGION} 300 IN A {FALLBACK_ADDRESS}", f"{OTHER_REGION} 300 IN A 192.0.2.77")),
    ]
    server = BindServer(state_dir=tmp_path_factory.mktemp("bind"), port=free_port(), zones=zones, keys=[key])
    server.start(reset_zones=True)
    try:
        yield Lab(server, key)
    finally:
        server.stop()


def settings(lab: Lab, zone: str, **overrides: object) -> dict:
    values: dict = {
        "portal_region_code": REGION,
        "portal_domain_name": f"zapis.{zone}",
        "portal_domain_zone": zone,
        "portal_domain_fallback": f"{REGION}.2dr.ru",
        "portal_domain_address": PORTAL_ADDRESS,
        "portal_domain_dns_server": "127.0.0.1",
        "portal_domain_dns_port": lab.port,
        "portal_domain_tsig_name": lab.key.name,
        "portal_domain_tsig_secret": lab.key.secret,
        "portal_domain_tsig_algorithm": "hmac-sha256",
        "portal_domain_resolvers": [f"127.0.0.1:{lab.port}"],
        "portal_domain_dns_attempts": 2,
        "portal_domain_dns_retry_delay": 1,
        "portal_domain_verify_retries": 2,
        "portal_domain_verify_delay": 1,
    }
    values.update(overrides)
    return values


def run(tmp_path: Path, values: dict, *args: str) -> PlaybookRun:
    """Run the playbook with an inventory written to disk: the secret never
    appears on the command line, so finding it in the output is a leak."""
    inventory = tmp_path / f"inventory-{secrets.token_hex(3)}"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"portal": {"hosts": {HOST: {"ansible_connection": "local"}}}}}})
    )
    (inventory / "group_vars" / "all" / "domain.yml").write_text(yaml.safe_dump(values, allow_unicode=True))
    return ansible_playbook(PLAYBOOK, inventory, *args, timeout=300)


def failure_text(result: PlaybookRun) -> str:
    """The failure messages of a run, joined on one line (the callback wraps long lines)."""
    return re.sub(r"\s+", " ", result.output)


def test_create_then_second_run_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("create")
    values = settings(
        lab, zone, portal_domain_aliases=[f"www.{zone}"], portal_domain_address6="2001:db8::10", portal_domain_ttl=600
    )
    serial = lab.serial(zone)

    first = run(tmp_path, values)

    assert first.rc == 0, first.output
    assert first.changed(HOST) >= 1
    for name in (f"zapis.{zone}", f"www.{zone}"):
        assert lab.rrset(name, "A") == [PORTAL_ADDRESS]
        assert lab.rrset(name, "AAAA") == ["2001:db8::10"]
    assert lab.serial(zone) > serial

    second = run(tmp_path, values)

    assert second.rc == 0, second.output
    assert second.changed(HOST) == 0, second.output

    converged_check = run(tmp_path, values, "--check", "--diff")
    assert converged_check.rc == 0, converged_check.output
    assert converged_check.changed(HOST) == 0, converged_check.output


def test_change_of_address_is_sent_and_shown_as_diff(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("change")
    name = f"zapis.{zone}"
    assert run(tmp_path, settings(lab, zone, portal_domain_address="127.0.0.1")).rc == 0
    serial = lab.serial(zone)

    # The fallback still points at 127.0.0.1: only a warning by default.
    changed = run(tmp_path, settings(lab, zone, portal_domain_address="127.0.0.2"), "--diff")

    assert changed.rc == 0, changed.output
    assert lab.rrset(name) == ["127.0.0.2"]
    assert lab.serial(zone) > serial
    assert f"-{name}. 300 IN A 127.0.0.1" in changed.output
    assert f"+{name}. 300 IN A 127.0.0.2" in changed.output


def test_check_mode_sends_nothing_and_previews_the_change(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("check")
    name = f"zapis.{zone}"
    serial = lab.serial(zone)
    log_before = lab.log()

    plain_check = run(tmp_path, settings(lab, zone), "--check")
    preview = run(tmp_path, settings(lab, zone), "--check", "--diff")

    assert plain_check.rc == 0, plain_check.output
    assert plain_check.changed(HOST) >= 1

    assert preview.rc == 0, preview.output
    assert preview.changed(HOST) >= 1
    assert f"+{name}. 300 IN A {PORTAL_ADDRESS}" in preview.output
    assert lab.rrset(name) == []
    assert lab.serial(zone) == serial
    assert lab.updates_of(zone, lab.log()[len(log_before) :]) == []


@pytest.mark.parametrize("wrong", ["secret", "key name"])
def test_wrong_tsig_fails_naming_tsig_and_server_without_leaking_the_secret(
    lab: Lab, tmp_path: Path, wrong: str
) -> None:
    zone = zone_name("tsig")
    bad_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    values = (
        settings(lab, zone, portal_domain_tsig_secret=bad_secret)
        if wrong == "secret"
        else settings(lab, zone, portal_domain_tsig_name=f"nokey-{TAG}")
    )
    serial = lab.serial(zone)

    result = run(tmp_path, values, "-vvv")

    assert result.rc != 0
    assert result.failed(HOST) == 1
    text = failure_text(result)
    assert re.search(rf"TSIG: 127\.0\.0\.1:{lab.port} rejected the TSIG key", text), result.output
    assert ("BADSIG" if wrong == "secret" else "BADKEY") in text
    assert bad_secret not in result.output
    assert lab.key.secret not in result.output
    assert lab.rrset(f"zapis.{zone}") == []
    assert lab.serial(zone) == serial


def test_server_down_fails_after_bounded_retries(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("down")
    dead_port = free_port(26000, 26999)
    started = time.monotonic()

    result = run(tmp_path, settings(lab, zone, portal_domain_dns_port=dead_port))

    assert result.rc != 0
    text = failure_text(result)
    assert f"DNS server 127.0.0.1:{dead_port} is unreachable" in text, result.output
    assert "gave up after 2 attempts" in text
    assert "Nothing was sent to zone" in text
    assert time.monotonic() - started < 120
    assert lab.rrset(f"zapis.{zone}") == []


def test_name_outside_the_zone_is_refused_before_anything_is_sent(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("outside")
    outside = f"zapis.elsewhere-{TAG}.test"
    serial = lab.serial(zone)
    log_before = lab.log()

    result = run(tmp_path, settings(lab, zone, portal_domain_name=outside))

    assert result.rc != 0
    text = failure_text(result)
    assert f"8-FZ: portal_domain_name={outside} is outside the MIAC-owned zone portal_domain_zone={zone}" in text
    assert "Nothing was sent to any DNS server" in text
    assert lab.serial(zone) == serial
    assert lab.updates_of(zone, lab.log()[len(log_before) :]) == []
    # Not even the read-only check of the primary master ran.
    assert "Check that the primary master answers" not in result.output


def test_2dr_ru_is_never_written(lab: Lab, tmp_path: Path) -> None:
    serial = lab.serial("2dr.ru")
    values = settings(lab, "2dr.ru", portal_domain_name=f"zapis-{TAG}.2dr.ru")

    result = run(tmp_path, values)

    assert result.rc != 0
    text = failure_text(result)
    assert f"8-FZ: portal_domain_name=zapis-{TAG}.2dr.ru is under 2dr.ru" in text
    assert "8-FZ: portal_domain_zone=2dr.ru is under 2dr.ru" in text
    assert lab.serial("2dr.ru") == serial
    assert lab.rrset(f"zapis-{TAG}.2dr.ru") == []
    assert lab.updates_of("2dr.ru") == []


def test_update_refused_by_policy_leaves_the_zone_as_it_was(lab: Lab, tmp_path: Path) -> None:
    name, alias = f"zapis.{POLICY_ZONE}", f"www.{POLICY_ZONE}"
    log_before = lab.log()

    # The portal name is granted, the alias is not: the first set goes in,
    # the second is refused, and the first must be taken out again.
    result = run(tmp_path, settings(lab, POLICY_ZONE, portal_domain_aliases=[alias]), "-vvv")

    assert result.rc != 0
    text = failure_text(result)
    assert f"127.0.0.1:{lab.port} refused the update of {alias}. A (REFUSED)" in text, result.output
    assert f"update-policy {{ grant {lab.key.name} name {alias}. A AAAA; }}" in text
    assert "were put back" in text
    assert lab.key.secret not in result.output
    assert lab.rrset(name) == []
    assert lab.rrset(alias) == []
    updates = "\n".join(lab.updates_of(POLICY_ZONE, lab.log()[len(log_before) :]))
    assert f"adding an RR at '{name}' A" in updates
    assert f"deleting rrset at '{name}' A" in updates


def test_fallback_is_only_read_and_a_mismatch_warns_or_fails(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("fallback")
    serial = lab.serial("2dr.ru")
    elsewhere = f"{OTHER_REGION}.2dr.ru"

    warned = run(tmp_path, settings(lab, zone, portal_domain_fallback=elsewhere))

    assert warned.rc == 0, warned.output
    warning = failure_text(warned)
    assert f"[WARNING]: {elsewhere}. A: 127.0.0.1:{lab.port} answers 192.0.2.77, wanted {PORTAL_ADDRESS}" in warning
    assert "portal_domain_fallback_strict: true" in warning

    strict = run(tmp_path, settings(lab, zone, portal_domain_fallback=elsewhere, portal_domain_fallback_strict=True))

    assert strict.rc != 0
    assert f"{elsewhere}. A: 127.0.0.1:{lab.port} answers 192.0.2.77" in failure_text(strict)
    # Nothing wrote to the fallback's zone in any of these runs.
    assert lab.rrset(elsewhere) == ["192.0.2.77"]
    assert lab.rrset(f"{REGION}.2dr.ru") == [FALLBACK_ADDRESS]
    assert lab.serial("2dr.ru") == serial
    assert lab.updates_of("2dr.ru") == []


def test_national_tld_setting(lab: Lab, tmp_path: Path) -> None:
    refused = run(tmp_path, settings(lab, zone_name("outside"), portal_domain_require_national_tld=True))

    assert refused.rc != 0
    assert "is not in a national top-level domain (.ru, .рф, .su)" in failure_text(refused)

    accepted = run(tmp_path, settings(lab, NATIONAL_ZONE, portal_domain_require_national_tld=True))

    assert accepted.rc == 0, accepted.output
    assert lab.rrset(f"zapis.{NATIONAL_ZONE}") == [PORTAL_ADDRESS]
