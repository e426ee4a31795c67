"""module_utils/esia_onboard/rfc2136.py without a server: parsing, the plan,
the UPDATE message it builds (read back from its wire form) and the nsupdate
restore script. The exchange with a real BIND9 is in tests/integration/test_portal_domain.py."""

from __future__ import annotations

import base64
from pathlib import Path

import ansible.module_utils
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update
import pytest

_MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils.esia_onboard import rfc2136  # noqa: E402

DnsError = rfc2136.DnsError
SECRET = base64.b64encode(b"k" * 32).decode()


def change(name: str, rdata: list[str], before: list[str], rdtype: str = "A", ttl: int = 300) -> dict:
    return {"name": name, "type": rdtype, "ttl": ttl, "rdata": rdata, "before": {"ttl": 300, "rdata": before}}


def wire_sections(update: dns.update.UpdateMessage) -> dict[str, list[tuple[str, str, str, int, list[str]]]]:
    """The sections of the message as the server parses them: (name, class, type, ttl, values)."""
    keyring = {update.keyname: update.keyring} if update.keyring is not None else None
    parsed = dns.message.from_wire(update.to_wire(), keyring=keyring)

    def rows(section) -> list[tuple[str, str, str, int, list[str]]]:
        # An UPDATE carries one RR per rrset on the wire: group them back.
        grouped: dict[tuple[str, str, str, int], list[str]] = {}
        for r in section:
            key = (
                r.name.to_text(),
                dns.rdataclass.to_text(r.deleting or r.rdclass),
                dns.rdatatype.to_text(r.rdtype),
                r.ttl,
            )
            grouped.setdefault(key, []).extend(x.to_text() for x in r)
        return [(*key, sorted(values)) for key, values in grouped.items()]

    return {"prerequisite": rows(parsed.prerequisite), "update": rows(parsed.update)}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("[2001:db8::1]:54", ("2001:db8::1", 54)),
    ],
)
def test_parse_endpoint(server: str, expected: tuple[str, int]) -> None:
    assert rfc2136.parse_endpoint(server, 53) == expected


@pytest.mark.parametrize("server", ["ns1.miac77.ru", "192.0.2.53:+53", "192.0.2.53:٥٣", "192.0.2.53:0", "[::1"])
def test_parse_endpoint_refuses_what_is_not_an_address_and_port(server: str) -> None:
    with pytest.raises(DnsError) as caught:
        rfc2136.parse_endpoint(server, 53)
    assert caught.value.reason == "config"


def test_update_with_an_existing_set_requires_exactly_that_set_then_replaces_it() -> None:
    update = rfc2136.build_update(
        "miac77.ru", [change("zapis.miac77.ru", ["203.0.113.10"], ["192.0.2.1", "192.0.2.2"])]
    )

    sections = wire_sections(update)

    # RFC 2136 2.4.2: class IN, TTL 0, every value: "this set exists with exactly these values".
    assert sections["prerequisite"] == [("zapis.miac77.ru.", "IN", "A", 0, ["192.0.2.1", "192.0.2.2"])]
    # 2.5.2 delete the set (class ANY, no data), then 2.5.1 add the new one.
    assert sections["update"] == [
        ("zapis.miac77.ru.", "ANY", "A", 0, []),
        ("zapis.miac77.ru.", "IN", "A", 300, ["203.0.113.10"]),
    ]
    assert update.zone[0].name.to_text() == "miac77.ru."


def test_update_of_a_missing_set_requires_that_it_is_still_missing() -> None:
    update = rfc2136.build_update("miac77.ru.", [change("www.miac77.ru", ["2001:db8::10"], [], rdtype="AAAA", ttl=600)])

    sections = wire_sections(update)

    # RFC 2136 2.4.3: class NONE, type AAAA, no data: "no such set".
    assert sections["prerequisite"] == [("www.miac77.ru.", "NONE", "AAAA", 0, [])]
    assert sections["update"][-1] == ("www.miac77.ru.", "IN", "AAAA", 600, ["2001:db8::10"])


def test_several_changes_go_into_one_message() -> None:
    update = rfc2136.build_update(
        "miac77.ru",
        [change("zapis.miac77.ru", ["203.0.113.10"], []), change("www.miac77.ru", ["203.0.113.10"], ["192.0.2.9"])],
    )
    sections = wire_sections(update)
    assert len(sections["prerequisite"]) == 2
    assert len(sections["update"]) == 4


def test_a_change_to_no_values_deletes_the_set() -> None:
    sections = wire_sections(
        rfc2136.build_update("miac77.ru", [change("_acme-challenge.zapis.miac77.ru", [], ['"t"'], "TXT")])
    )
    assert sections["update"] == [("_acme-challenge.zapis.miac77.ru.", "ANY", "TXT", 0, [])]


def test_the_update_is_tsig_signed_with_the_key() -> None:
    key = rfc2136.make_key("portal-update", SECRET, "hmac-sha256")
    update = rfc2136.build_update("miac77.ru", [change("zapis.miac77.ru", ["203.0.113.10"], [])], key)

    wire = update.to_wire()

    assert dns.message.from_wire(wire, keyring={key.name: key}).had_tsig
    wrong = dns.tsig.Key("portal-update", base64.b64encode(b"x" * 32).decode(), "hmac-sha256")
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(wire, keyring={wrong.name: wrong})


@pytest.mark.parametrize(
    ("name", "reason"), [("miac77.ru", "apex"), ("MIAC77.ru.", "apex"), ("zapis.miac78.ru", "not_in_zone")]
)
def test_the_apex_and_names_outside_the_zone_are_never_written(name: str, reason: str) -> None:
    with pytest.raises(DnsError) as caught:
        rfc2136.build_update(
            "miac77.ru", [change("zapis.miac77.ru", ["203.0.113.10"], []), change(name, ["203.0.113.10"], [])]
        )
    assert caught.value.reason == reason
    assert name.lower().rstrip(".") in str(caught.value)


def test_make_key_reports_a_bad_secret_without_echoing_it() -> None:
    with pytest.raises(DnsError) as caught:
        rfc2136.make_key("portal-update", "not base64!!secret-value", "hmac-sha256")
    assert caught.value.reason == "tsig"
    assert "secret-value" not in str(caught.value)


@pytest.mark.parametrize("algorithm", ["hmac-md5", "HMAC-SHA256 ", "sha256"])
def test_make_key_refuses_weak_or_unknown_algorithms(algorithm: str) -> None:
    with pytest.raises(DnsError) as caught:
        rfc2136.make_key("portal-update", SECRET, algorithm)
    assert caught.value.reason == "config"


def test_make_key_refuses_an_empty_secret() -> None:
    with pytest.raises(DnsError) as caught:
        rfc2136.make_key("portal-update", "", "hmac-sha256")
    assert caught.value.reason == "tsig"


def test_plan_keeps_what_differs_with_what_was_there() -> None:
    current = [
        {"name": "a.z.", "type": "A", "ttl": 300, "rdata": ["192.0.2.1"]},
        {"name": "b.z.", "type": "A", "ttl": 60, "rdata": ["192.0.2.1"]},
        {"name": "c.z.", "type": "A", "ttl": None, "rdata": []},
    ]
    wanted = [{"name": n, "type": "A", "ttl": 300, "rdata": ["192.0.2.1"]} for n in ("a.z.", "b.z.", "c.z.")]

    changes = rfc2136.plan(current, wanted)

    assert [(c["name"], c["before"]) for c in changes] == [
        ("b.z.", {"ttl": 60, "rdata": ["192.0.2.1"]}),
        ("c.z.", {"ttl": None, "rdata": []}),
    ]
    assert [c["name"] for c in rfc2136.plan(current, wanted, compare_ttl=False)] == ["c.z."]


def test_serial_arithmetic_wraps() -> None:
    assert rfc2136.serial_newer(2, 1)
    assert rfc2136.serial_newer(1, 4294967295)
    assert not rfc2136.serial_newer(1, 1)
    assert not rfc2136.serial_newer(1, 2)


def test_nsupdate_script_puts_every_set_back_and_reads_as_zone_lines() -> None:
    rrsets = [
        {"name": "zapis.miac77.ru.", "type": "A", "ttl": 300, "rdata": ["192.0.2.1", "192.0.2.2"]},
        {"name": "www.miac77.ru.", "type": "AAAA", "ttl": None, "rdata": []},
    ]

    script = rfc2136.nsupdate_script("miac77.ru.", "[2001:db8::53]:5353", rrsets, header="before the run\n\nline")

    lines = script.splitlines()
    assert lines[:3] == ["; before the run", ";", "; line"]
    assert lines[3:] == [
        "server 2001:db8::53 5353",
        "zone miac77.ru.",
        "update delete www.miac77.ru. IN AAAA",
        "update delete zapis.miac77.ru. IN A",
        "update add zapis.miac77.ru. 300 IN A 192.0.2.1",
        "update add zapis.miac77.ru. 300 IN A 192.0.2.2",
        "send",
    ]
    # What follows "update add" is a plain zone-file line.
    assert [line.removeprefix("update add ") for line in lines if line.startswith("update add")] == (
        rfc2136.zone_lines(rrsets).splitlines()
    )


def test_master_from_settings_needs_an_address_not_a_host_name() -> None:
    with pytest.raises(DnsError) as caught:
        rfc2136.Master.from_settings("ns1.miac77.ru", 53)
    assert caught.value.reason == "config"
    master = rfc2136.Master.from_settings("127.0.0.1:5353", 53, "k", SECRET, timeout=1)
    assert master.where == "127.0.0.1:5353"
    assert master.key is not None


def test_an_unreachable_master_is_reported_after_the_bounded_attempts() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    master = rfc2136.Master("127.0.0.1", 9, timeout=1, attempts=2, retry_delay=0)
    with pytest.raises(DnsError) as caught:
        master.rrset("zapis.miac77.ru", "A")
    assert caught.value.reason == "unreachable"
    assert "gave up after 2 attempts" in str(caught.value)
