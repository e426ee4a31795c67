"""portal_domain against a real BIND9 on 127.0.0.1 started for this module.

Every test gets zones with random names the role has never seen. The zone is
read back with plain dnspython queries (not the role's own module), and
BIND's update log shows what was (not) sent. The fault tests at the end call
the update module's own code (library/portal_domain_update.py and
module_utils/esia_onboard/rfc2136.py) against the same server, changing the
zone between its read and its update.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ansible.module_utils
import dns.message
import dns.query
import dns.rdatatype
import dns.tsig
import dns.update
import pytest
import yaml

from lab.bind import BindServer, TsigKey, Zone
from tests.harness import REPO, PlaybookRun, ansible_playbook

if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))
from ansible.module_utils.esia_onboard import rfc2136

_SPEC = importlib.util.spec_from_file_location("portal_domain_update", REPO / "library" / "portal_domain_update.py")
assert _SPEC is not None and _SPEC.loader is not None
update_module = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(update_module)

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


OPEN_ZONES = ("create", "change", "check", "tsig", "down", "outside", "fallback", "apex", "race", "badkey", "restore")
# Records someone else put there before the portal came.
EXISTING_ZONE = zone_name("existing")
FOREIGN_ADDRESS = "192.0.2.50"
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

    def update(self, zone: str, name: str, rdtype: str, *values: str) -> None:
        """Replace one set the way another administrator would (not through the role)."""
        message = dns.update.UpdateMessage(
            zone, keyring=dns.tsig.Key(self.key.name, self.key.secret), keyalgorithm="hmac-sha256"
        )
        message.replace(name.rstrip(".") + ".", 300, rdtype, *values)
        response = dns.query.tcp(message, "127.0.0.1", port=self.port, timeout=5)
        assert response.rcode() == 0, response

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
        Zone(EXISTING_ZONE, update_key=key.name, records=(f"zapis 3600 IN A {FOREIGN_ADDRESS}",)),
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


def backups(tmp_path: Path) -> list[Path]:
    """The backup files the role wrote on the controller (artifacts/<region>/dns/)."""
    return sorted((tmp_path / "artifacts" / REGION / "dns").glob("*"))


def run(tmp_path: Path, values: dict, *args: str) -> PlaybookRun:
    """Run the playbook with an inventory written to disk: the secret never
    appears on the command line, so finding it in the output is a leak."""
    values = {"portal_artifacts_root": str(tmp_path / "artifacts"), **values}
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

    # A different address already there: refused without replace_existing.
    refused = run(tmp_path, settings(lab, zone, portal_domain_address="127.0.0.2"))
    assert refused.rc != 0
    assert "portal_domain_replace_existing is false" in failure_text(refused), refused.output
    assert lab.rrset(name) == ["127.0.0.1"]
    assert lab.serial(zone) == serial

    # The fallback still points at 127.0.0.1: only a warning by default.
    changed = run(
        tmp_path, settings(lab, zone, portal_domain_address="127.0.0.2", portal_domain_replace_existing=True), "--diff"
    )

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
    assert backups(tmp_path) == [], "check mode sends nothing, so it saves nothing either"


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
    # The role's entry check (the rules of validate.yml) names the setting, the value and the fix.
    assert f"portal_domain_name: got '{outside}'; 8-FZ: must be inside portal_domain_zone '{zone}'" in text, text
    assert "nothing was changed" in text
    assert lab.serial(zone) == serial
    assert lab.updates_of(zone, lab.log()[len(log_before) :]) == []
    # Not even the read-only comparison at the primary master (the first DNS task) ran.
    assert "Compare the portal records on the primary master" not in result.output
    assert "portal_domain_update" not in result.output


def test_2dr_ru_is_never_written(lab: Lab, tmp_path: Path) -> None:
    serial = lab.serial("2dr.ru")
    values = settings(lab, "2dr.ru", portal_domain_name=f"zapis-{TAG}.2dr.ru")

    result = run(tmp_path, values)

    assert result.rc != 0
    text = failure_text(result)
    assert f"portal_domain_name: got 'zapis-{TAG}.2dr.ru'; 8-FZ: 2dr.ru names are only the fallback" in text, text
    assert "portal_domain_zone: got '2dr.ru'; 8-FZ: the portal must live in a zone the MIAC owns" in text
    assert lab.serial("2dr.ru") == serial
    assert lab.rrset(f"zapis-{TAG}.2dr.ru") == []
    assert lab.updates_of("2dr.ru") == []


def test_update_refused_by_policy_leaves_the_zone_as_it_was(lab: Lab, tmp_path: Path) -> None:
    name, alias = f"zapis.{POLICY_ZONE}", f"www.{POLICY_ZONE}"
    serial = lab.serial(POLICY_ZONE)
    log_before = lab.log()

    # The portal name is granted, the alias is not: both sets travel in one
    # update, which the server refuses as a whole.
    result = run(tmp_path, settings(lab, POLICY_ZONE, portal_domain_aliases=[alias]), "-vvv")

    assert result.rc != 0
    text = failure_text(result)
    assert f"127.0.0.1:{lab.port} refused the update of zone {POLICY_ZONE} (REFUSED)" in text, result.output
    assert "update-policy" in text
    assert "The server applied nothing" in text
    assert lab.key.secret not in result.output
    assert lab.rrset(name) == []
    assert lab.rrset(alias) == []
    assert lab.serial(POLICY_ZONE) == serial
    updates = "\n".join(lab.updates_of(POLICY_ZONE, lab.log()[len(log_before) :]))
    assert "adding an RR" not in updates
    assert "deleting" not in updates
    # The backup exists although the update was refused: it was written first.
    (backup,) = backups(tmp_path)
    assert POLICY_ZONE in backup.name
    assert f"update delete {name}. IN A" in backup.read_text()


def test_fallback_is_only_read_and_a_mismatch_warns_or_fails(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("fallback")
    serial = lab.serial("2dr.ru")
    elsewhere = f"{OTHER_REGION}.2dr.ru"

    # The fallback is always <portal_region_code>.2dr.ru: a region whose old name points elsewhere.
    warned = run(tmp_path, settings(lab, zone, portal_region_code=OTHER_REGION, portal_domain_fallback=elsewhere))

    assert warned.rc == 0, warned.output
    warning = failure_text(warned)
    assert f"[WARNING]: {elsewhere}. A: 127.0.0.1:{lab.port} answers 192.0.2.77, wanted {PORTAL_ADDRESS}" in warning
    assert "portal_domain_fallback_strict: true" in warning

    strict = run(
        tmp_path,
        settings(
            lab,
            zone,
            portal_region_code=OTHER_REGION,
            portal_domain_fallback=elsewhere,
            portal_domain_fallback_strict=True,
        ),
    )

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
    assert "portal_domain_require_national_tld is true: use a zone under .ru, .рф or .su" in failure_text(refused)

    accepted = run(tmp_path, settings(lab, NATIONAL_ZONE, portal_domain_require_national_tld=True))

    assert accepted.rc == 0, accepted.output
    assert lab.rrset(f"zapis.{NATIONAL_ZONE}") == [PORTAL_ADDRESS]


def test_an_existing_different_set_is_kept_unless_replace_existing_then_saved_and_restorable(
    lab: Lab, tmp_path: Path
) -> None:
    zone = EXISTING_ZONE
    name = f"zapis.{zone}"
    serial = lab.serial(zone)
    log_before = lab.log()

    kept = run(tmp_path, settings(lab, zone))

    assert kept.rc != 0
    text = failure_text(kept)
    assert "portal_domain_replace_existing is false" in text, kept.output
    assert f"{name}. A holds {FOREIGN_ADDRESS} (TTL 3600) at 127.0.0.1:{lab.port}" in text
    assert f"this run would write {PORTAL_ADDRESS} (TTL 300)" in text
    assert "set portal_domain_replace_existing: true" in text
    assert lab.rrset(name) == [FOREIGN_ADDRESS]
    assert lab.serial(zone) == serial
    assert lab.updates_of(zone, lab.log()[len(log_before) :]) == []
    assert backups(tmp_path) == []

    replaced = run(tmp_path, settings(lab, zone, portal_domain_replace_existing=True))

    assert replaced.rc == 0, replaced.output
    assert lab.rrset(name) == [PORTAL_ADDRESS]
    (backup,) = backups(tmp_path)
    saved = backup.read_text()
    assert f"{name}. 3600 IN A {FOREIGN_ADDRESS}" in saved
    assert f"IN A {PORTAL_ADDRESS}" not in saved
    assert oct(backup.stat().st_mode & 0o777) == "0o640"
    assert lab.key.secret not in saved

    # The backup is what the runbook says: an nsupdate script that puts the old set back.
    key_file = tmp_path / "restore.key"
    key_file.write_text(lab.key.stanza())
    key_file.chmod(0o600)
    restored = subprocess.run(
        ["nsupdate", "-k", str(key_file), str(backup)], capture_output=True, text=True, timeout=30, check=False
    )
    assert restored.returncode == 0, restored.stderr
    assert lab.rrset(name) == [FOREIGN_ADDRESS]
    answer = dns.query.tcp(dns.message.make_query(name, "A"), "127.0.0.1", port=lab.port, timeout=5)
    assert answer.answer[0].ttl == 3600


def test_the_zone_apex_is_never_written(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("apex")
    serial = lab.serial(zone)
    log_before = lab.log()

    result = run(tmp_path, settings(lab, zone, portal_domain_name=zone))

    assert result.rc != 0
    assert "apex" in failure_text(result).lower(), result.output
    assert lab.rrset(zone) == []
    assert lab.serial(zone) == serial
    assert lab.updates_of(zone, lab.log()[len(log_before) :]) == []

    # Defence in depth: the update module refuses the apex itself, whatever the entry checks let through.
    with pytest.raises(rfc2136.DnsError) as caught:
        update_module.converge(module_params(lab, zone, tmp_path, names=[f"zapis.{zone}", zone]), check_mode=False)
    assert caught.value.reason == "apex"
    assert lab.rrset(f"zapis.{zone}") == []
    assert lab.serial(zone) == serial


def module_params(lab: Lab, zone: str, tmp_path: Path, **overrides: object) -> dict:
    """Parameters of portal_domain_update as the role passes them."""
    params: dict = {
        "server": "127.0.0.1",
        "port": lab.port,
        "timeout": 5.0,
        "attempts": 1,
        "retry_delay": 0.0,
        "key_name": lab.key.name,
        "key_secret": lab.key.secret,
        "key_algorithm": "hmac-sha256",
        "zone": zone,
        "names": [f"zapis.{zone}", f"www.{zone}"],
        "address": PORTAL_ADDRESS,
        "address6": "",
        "ttl": 300,
        "replace_existing": False,
        "replace_setting": "portal_domain_replace_existing",
        "backup_dir": str(tmp_path / "dns"),
        "send": True,
    }
    params.update(overrides)
    return params


def test_a_change_between_read_and_update_leaves_the_zone_as_it_was(lab: Lab, tmp_path: Path) -> None:
    zone = zone_name("race")
    name, alias = f"zapis.{zone}", f"www.{zone}"
    seen: dict = {}

    def someone_else_changes_the_name() -> None:
        # The module has read both sets (both absent) and saved them; now,
        # before its update arrives, another administrator adds the name.
        seen["backups"] = sorted((tmp_path / "dns").glob("*"))
        lab.update(zone, name, "A", "192.0.2.99")
        seen["serial"] = lab.serial(zone)

    with pytest.raises(rfc2136.DnsError) as caught:
        update_module.converge(
            module_params(lab, zone, tmp_path), check_mode=False, before_send=someone_else_changes_the_name
        )

    assert caught.value.reason == "race"
    assert "re-run" in str(caught.value)
    assert len(seen["backups"]) == 1, "the backup must exist before the update is sent"
    # Nothing of the module's update was applied: not the name, not the alias.
    assert lab.rrset(name) == ["192.0.2.99"]
    assert lab.rrset(alias) == []
    assert lab.serial(zone) == seen["serial"]

    # The re-run the message asks for sees the new state: now it is someone's record.
    with pytest.raises(rfc2136.DnsError) as again:
        update_module.converge(module_params(lab, zone, tmp_path), check_mode=False)
    assert again.value.reason == "existing"
    assert lab.rrset(alias) == []


def test_an_update_with_a_wrong_tsig_key_changes_nothing(lab: Lab) -> None:
    zone = zone_name("badkey")
    name, alias = f"zapis.{zone}", f"www.{zone}"
    lab.update(zone, name, "A", "192.0.2.10")
    serial = lab.serial(zone)
    log_before = lab.log()
    reader = rfc2136.Master("127.0.0.1", lab.port, timeout=5)
    wanted = [{"name": n, "type": "A", "ttl": 300, "rdata": [PORTAL_ADDRESS]} for n in (f"{name}.", f"{alias}.")]
    changes = rfc2136.plan([reader.rrset(w["name"], "A") for w in wanted], wanted)
    assert len(changes) == 2
    wrong = rfc2136.make_key(lab.key.name, base64.b64encode(secrets.token_bytes(32)).decode())

    with pytest.raises(rfc2136.DnsError) as caught:
        rfc2136.Master("127.0.0.1", lab.port, timeout=5, key=wrong).send(rfc2136.build_update(zone, changes, wrong))

    assert caught.value.reason == "tsig"
    assert "BADSIG" in str(caught.value) or "NOTAUTH" in str(caught.value)
    assert lab.rrset(name) == ["192.0.2.10"]
    assert lab.rrset(alias) == []
    assert lab.serial(zone) == serial
    assert lab.updates_of(zone, lab.log()[len(log_before) :]) == []


def test_rfc2136_adds_checks_and_removes_one_txt_value_as_acme_dns01_does(lab: Lab) -> None:
    zone = zone_name("restore")
    owner = f"_acme-challenge.zapis.{zone}"
    master = rfc2136.Master.from_settings("127.0.0.1", lab.port, lab.key.name, lab.key.secret, timeout=5)
    lab.update(zone, owner, "TXT", '"someone-else"')

    added = master.add_values(zone, owner, "TXT", 60, ["token-1"])

    assert added is not None and added["before"]["rdata"] == ['"someone-else"']
    assert lab.rrset(owner, "TXT") == ['"someone-else"', '"token-1"']
    assert master.add_values(zone, owner, "TXT", 60, ["token-1"]) is None
    master.remove_values(zone, owner, "TXT", ["token-1"])
    assert lab.rrset(owner, "TXT") == ['"someone-else"']
