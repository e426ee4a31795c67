"""tools/readiness.py: every item's done / pending / not done branch, from constructed observations."""

# The evidence is Russian: Cyrillic letters in the expected fragments are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from tools.readiness import ITEM_IDS, evaluate, parse_confirmation, region_document, text_table

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "tools" / "status.schema.json").read_text())

SYNCED = """Reference ID    : 7F7F0101 ()
Stratum         : 10
Ref time (UTC)  : Wed Nov 25 11:59:00 2026
System time     : 0.000000120 seconds slow of NTP time
Leap status     : Normal
"""
UNSYNCED = """Reference ID    : 00000000 ()
Stratum         : 0
System time     : 0.000000000 seconds fast of NTP time
Leap status     : Not synchronised
"""

DER_PATH = "/var/lib/esia-portal/esia/esia_99.cer"
GOST_INFO = {
    "subject": "CN=ГБУЗ МИАЦ (ЕСИА, регион 99)",
    "issuer": "CN=ГБУЗ МИАЦ (ЕСИА, регион 99)",
    "serial_number": "1234",
    "not_before": "2026-01-01T00:00:00+00:00",
    "not_after": "2027-01-01T00:00:00+00:00",
    "key_algorithm": "gost2012_256",
    "sha1_thumbprint": "AB" * 20,
    "streebog256": "CD" * 32,
}


def https_probe(name: str, **changes) -> dict:
    probe = {
        "address": "127.0.0.1",
        "port": 18443,
        "name": name,
        "verified": True,
        "http_status": 200,
        "certificate": {"subject": f"CN={name}", "issuer": "CN=Lab CA", "not_after": "2027-02-01T00:00:00+00:00"},
        "error": None,
    }
    probe.update(changes)
    return probe


def complete() -> tuple[dict, dict]:
    """Observations and network of a host where every step is done."""
    observations = {
        "host": "lab-portal",
        "settings": {
            "portal_name": "zapis.miac99.test",
            "fallback_name": "99.2dr.ru",
            "address": "127.0.0.1",
            "https_port": 18443,
            "gost_min_days": 30,
            "https_min_days": 14,
            "clock_max_offset": 1.0,
            "environment": "test",
            "mnemonic": "MIAC99PORTAL",
            "registered_thumbprint": "",
        },
        "confirmations": {
            "status_esia_org_registered": "2026-10-01",
            "status_esia_is_registered": dt.date(2026, 10, 2),
            "status_gost_certificate_registered": "2026-10-03",
            "status_application_sent": "2026-10-04",
            "status_test_access_granted": "2026-10-20",
        },
        "on_host": {
            "reachable": True,
            "cryptopro_fact": {
                "certificate_der": "/var/lib/esia-portal/esia/esia_99.cer",
                "sha1_thumbprint": "AB" * 20,
            },
            "certificate": {"path": "/var/lib/esia-portal/esia/esia_99.cer", "exists": True, "info": dict(GOST_INFO)},
            "chrony": {"rc": 0, "stdout": SYNCED, "stderr": ""},
            "selfcheck": {
                "signer": "/usr/local/bin/esia-sign",
                "signer_present": True,
                "mode": "v2",
                "run_as": "esia-portal",
                "signed": {"ok": True, "signature_bytes": 64, "error": ""},
                "verified": {"ok": True, "verified": True, "tamper_rejected": True, "digest": "md_gost12_256"},
            },
        },
        "application": {
            "dir": "/repo/artifacts/99/application",
            "files": [
                {"path": "/repo/artifacts/99/application/application.html", "mtime": 1764000000.0},
                {"path": "/repo/artifacts/99/application/esia_99.cer", "mtime": 1764000100.0},
            ],
        },
    }
    network = {
        "dns": {
            "name": "zapis.miac99.test",
            "resolvers": ["127.0.0.1:15353"],
            "addresses": ["127.0.0.1"],
            "error": None,
        },
        "https": {"zapis.miac99.test": https_probe("zapis.miac99.test"), "99.2dr.ru": https_probe("99.2dr.ru")},
        "fallback": {
            "name": "99.2dr.ru",
            "resolvers": ["127.0.0.1:15353"],
            "addresses": ["127.0.0.1"],
            "error": None,
            "probe": https_probe("99.2dr.ru"),
        },
    }
    return observations, network


def states(observations: dict, network: dict) -> dict[str, str]:
    entry = evaluate(observations, network, now=NOW)
    return {i["id"]: i["state"] for i in entry["items"]}


def item(observations: dict, network: dict, item_id: str) -> dict:
    return next(i for i in evaluate(observations, network, now=NOW)["items"] if i["id"] == item_id)


# -- confirmations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (None, None)),
        ("", (None, None)),
        ("2026-10-01", (dt.date(2026, 10, 1), None)),
        (" 2026-10-01 ", (dt.date(2026, 10, 1), None)),
        (dt.date(2026, 10, 1), (dt.date(2026, 10, 1), None)),
        (dt.datetime(2026, 10, 1, 15, 0), (dt.date(2026, 10, 1), None)),
        ("2026-11-25", (dt.date(2026, 11, 25), None)),
    ],
)
def test_confirmation_dates(value, expected):
    assert parse_confirmation(value, TODAY) == expected


@pytest.mark.parametrize(("value", "fragment"), [("yes", "ГГГГ-ММ-ДД"), (True, "ГГГГ-ММ-ДД"), (20261001, "ГГГГ")])
def test_confirmation_that_is_not_a_date(value, fragment):
    date, problem = parse_confirmation(value, TODAY)
    assert date is None and fragment in problem


def test_confirmation_in_the_future_is_refused():
    date, problem = parse_confirmation("2026-11-26", TODAY)
    assert date is None and "2026-11-26" in problem


# -- a complete host and the document ------------------------------------------


def test_everything_done():
    observations, network = complete()
    entry = evaluate(observations, network, now=NOW)
    assert [i["id"] for i in entry["items"]] == list(ITEM_IDS)
    assert {i["id"]: i["state"] for i in entry["items"]} == dict.fromkeys(ITEM_IDS, "done")
    assert entry["summary"] == {"done": 12, "pending": 0, "not_done": 0, "total": 12, "ready": True}
    assert entry["checked_at"] == "2026-11-25T12:00:00Z"
    jsonschema.validate(region_document("99", "МИАЦ", [entry], NOW), SCHEMA)


def test_nothing_done_yet_on_a_fresh_host():
    observations, _ = complete()
    observations["confirmations"] = {}
    observations["on_host"] = {"reachable": True, "chrony": {"rc": 0, "stdout": SYNCED}, "cryptopro_fact": {}}
    observations["application"] = {"dir": "/repo/artifacts/99/application", "files": []}
    network = {
        "dns": {"addresses": [], "error": "имя не существует (NXDOMAIN)"},
        "https": {},
        "fallback": {"addresses": [], "error": "имя не существует (NXDOMAIN)"},
    }
    entry = evaluate(observations, network, now=NOW)
    got = {i["id"]: i["state"] for i in entry["items"]}
    assert got == {
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
    assert entry["summary"]["ready"] is False
    jsonschema.validate(region_document("99", "МИАЦ", [entry], NOW), SCHEMA)


def test_unreachable_host_marks_every_host_item_not_done():
    observations, network = complete()
    observations["on_host"] = {"reachable": False, "error": "Failed to connect to the host via ssh"}
    entry = evaluate(observations, network, now=NOW)
    for item_id in ("gost_certificate", "clock", "esia_selfcheck"):
        result = next(i for i in entry["items"] if i["id"] == item_id)
        assert result["state"] == "not_done"
        assert "Failed to connect" in result["evidence"]
    # what does not depend on the host is still reported
    assert next(i for i in entry["items"] if i["id"] == "dns")["state"] == "done"


# -- steps 1 and 2 --------------------------------------------------------------


def test_org_registration_invalid_confirmation_is_not_done():
    observations, network = complete()
    observations["confirmations"]["status_esia_org_registered"] = "yes"
    result = item(observations, network, "esia_org_registered")
    assert result["state"] == "not_done"
    assert "status_esia_org_registered" in result["evidence"]


def test_is_registered_needs_a_mnemonic():
    observations, network = complete()
    observations["settings"]["mnemonic"] = ""
    result = item(observations, network, "esia_is_registered")
    assert result["state"] == "not_done"
    assert "esia_client_mnemonic" in result["evidence"]


def test_is_registration_pending_names_the_mnemonic_and_the_variable():
    observations, network = complete()
    observations["confirmations"]["status_esia_is_registered"] = None
    result = item(observations, network, "esia_is_registered")
    assert result["state"] == "pending"
    assert "MIAC99PORTAL" in result["evidence"] and "status_esia_is_registered" in result["evidence"]


# -- step 3: the certificate ----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda o: o["on_host"].update(cryptopro_fact={}), "esia_cryptopro.fact"),
        (lambda o: o["on_host"]["certificate"].update(exists=False), "нет файла"),
        (lambda o: o["on_host"]["certificate"].update(info=None, error="not a certificate"), "not a certificate"),
        (lambda o: o["on_host"]["certificate"]["info"].update(key_algorithm="rsa"), "rsa"),
        (lambda o: o["on_host"]["certificate"]["info"].update(key_algorithm="gost2001"), "gost2001"),
        (lambda o: o["on_host"]["certificate"]["info"].update(not_after="2026-11-01T00:00:00+00:00"), "истёк"),
        (lambda o: o["on_host"]["certificate"]["info"].update(not_before="2026-12-01T00:00:00+00:00"), "только с"),
        (lambda o: o["on_host"]["certificate"]["info"].update(not_after="2026-12-10T00:00:00+00:00"), "меньше 30"),
        (lambda o: o["on_host"]["cryptopro_fact"].update(sha1_thumbprint="EF" * 20), "повторите"),
    ],
)
def test_certificate_not_done(change, fragment):
    observations, network = complete()
    change(observations)
    result = item(observations, network, "gost_certificate")
    assert result["state"] == "not_done"
    assert fragment in result["evidence"]
    # and nothing can be registered on the portal without it
    assert item(observations, network, "gost_certificate_registered")["state"] == "not_done"


def test_certificate_done_shows_its_validity():
    observations, network = complete()
    result = item(observations, network, "gost_certificate")
    assert result["state"] == "done"
    assert "2027-01-01" in result["evidence"] and "ещё 36 дн." in result["evidence"]
    assert result["data"]["days_left"] == 36


def test_minimum_validity_is_a_setting():
    observations, network = complete()
    observations["settings"]["gost_min_days"] = 40
    assert item(observations, network, "gost_certificate")["state"] == "not_done"


def test_certificate_registration_pending_until_confirmed():
    observations, network = complete()
    observations["confirmations"]["status_gost_certificate_registered"] = None
    assert item(observations, network, "gost_certificate_registered")["state"] == "pending"


def test_renewed_certificate_needs_registering_again():
    observations, network = complete()
    observations["settings"]["registered_thumbprint"] = "12 " * 20
    result = item(observations, network, "gost_certificate_registered")
    assert result["state"] == "pending"
    assert "12" * 20 in result["evidence"] and "AB" * 20 in result["evidence"]
    observations["settings"]["registered_thumbprint"] = ("ab" * 20).upper()
    assert item(observations, network, "gost_certificate_registered")["state"] == "done"


# -- step 4: the application ------------------------------------------------------


def test_application_chain():
    observations, network = complete()
    assert item(observations, network, "application_generated")["evidence"].startswith("2 файл(ов)")
    observations["confirmations"]["status_test_access_granted"] = None
    assert states(observations, network)["test_access_granted"] == "pending"
    observations["confirmations"]["status_application_sent"] = None
    got = states(observations, network)
    assert (got["application_sent"], got["test_access_granted"]) == ("pending", "not_done")
    observations["application"]["files"] = []
    got = states(observations, network)
    assert (got["application_generated"], got["application_sent"]) == ("not_done", "not_done")


def test_application_lists_files_relative_to_its_directory():
    observations, network = complete()
    evidence = item(observations, network, "application_generated")["evidence"]
    assert "application.html, esia_99.cer" in evidence
    assert "2025-11-24" in evidence  # mtime 1764000100 = 2025-11-24 UTC


# -- domain -------------------------------------------------------------------------


def test_dns_pointing_elsewhere_is_not_done():
    observations, network = complete()
    network["dns"]["addresses"] = ["203.0.113.99"]
    result = item(observations, network, "dns")
    assert result["state"] == "not_done"
    assert "203.0.113.99" in result["evidence"] and "127.0.0.1" in result["evidence"]


def test_dns_error_is_shown():
    observations, network = complete()
    network["dns"] = {"addresses": [], "error": "нет ответа DNS за 5 с", "resolvers": ["127.0.0.1:1"]}
    result = item(observations, network, "dns")
    assert result["state"] == "not_done" and "127.0.0.1:1" in result["evidence"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"verified": False, "error": "сертификат не принят: Hostname mismatch"}, "Hostname mismatch"),
        ({"verified": False}, "не проверен"),
        ({"http_status": 502}, "HTTP-ответ 502"),
        ({"http_status": None}, "не получен"),
        (
            {"certificate": {"subject": "CN=x", "issuer": "CN=y", "not_after": "2026-12-01T00:00:00+00:00"}},
            "истекает через 5 дн.",
        ),
    ],
)
def test_https_fails_when_either_name_fails(changes, fragment):
    observations, network = complete()
    network["https"]["99.2dr.ru"] = https_probe("99.2dr.ru", **changes)
    result = item(observations, network, "https")
    assert result["state"] == "not_done"
    assert fragment in result["evidence"]
    assert "zapis.miac99.test @ 127.0.0.1:18443: HTTP 200" in result["evidence"]


def test_https_not_probed_is_not_done():
    observations, network = complete()
    del network["https"]["zapis.miac99.test"]
    assert item(observations, network, "https")["state"] == "not_done"


def test_fallback():
    observations, network = complete()
    network["fallback"]["probe"] = https_probe("99.2dr.ru", error="нет TLS-соединения: refused", verified=False)
    assert "refused" in item(observations, network, "fallback")["evidence"]
    assert item(observations, network, "fallback")["state"] == "not_done"
    network["fallback"] = {"addresses": [], "error": None, "resolvers": []}
    result = item(observations, network, "fallback")
    assert result["state"] == "not_done" and "системный резолвер" in result["evidence"]


# -- clock and self-check -----------------------------------------------------------


@pytest.mark.parametrize(
    ("chrony", "fragment"),
    [
        ({"rc": 1, "stdout": "", "stderr": "506 Cannot talk to daemon"}, "506 Cannot talk"),
        ({"rc": 2, "stdout": "", "stderr": "[Errno 2] No such file or directory: b'chronyc'"}, "No such file"),
        ({"rc": 0, "stdout": UNSYNCED}, "Not synchronised"),
        ({"rc": 0, "stdout": "garbage"}, "не разобран"),
    ],
)
def test_clock_not_done(chrony, fragment):
    observations, network = complete()
    observations["on_host"]["chrony"] = chrony
    result = item(observations, network, "clock")
    assert result["state"] == "not_done" and fragment in result["evidence"]


def test_clock_offset_limit_is_a_setting():
    observations, network = complete()
    observations["on_host"]["chrony"]["stdout"] = SYNCED.replace("0.000000120", "2.500000000")
    assert item(observations, network, "clock")["state"] == "not_done"
    observations["settings"]["clock_max_offset"] = 3.0
    assert item(observations, network, "clock")["state"] == "done"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda s: s.update(signer_present=False), "нет подписывающей программы"),
        (lambda s: s.update(signed={"ok": False, "error": "PIN file unreadable"}), "PIN file unreadable"),
        (lambda s: s.update(verified={}), "не проверялась"),
        (lambda s: s.update(verified={"ok": False, "error": "signature does not verify"}), "does not verify"),
    ],
)
def test_selfcheck_not_done(change, fragment):
    observations, network = complete()
    change(observations["on_host"]["selfcheck"])
    result = item(observations, network, "esia_selfcheck")
    assert result["state"] == "not_done" and fragment in result["evidence"]


def test_selfcheck_done_names_the_account_and_the_check():
    observations, network = complete()
    evidence = item(observations, network, "esia_selfcheck")["evidence"]
    assert "esia-portal" in evidence and "md_gost12_256" in evidence


def test_evaluate_does_not_change_its_input():
    observations, network = complete()
    before = copy.deepcopy((observations, network))
    evaluate(observations, network, now=NOW)
    assert (observations, network) == before


# -- the printed table ----------------------------------------------------------------


def test_text_table():
    observations, network = complete()
    observations["confirmations"]["status_test_access_granted"] = None
    network["dns"]["addresses"] = ["203.0.113.99"]
    document = region_document("99", "МИАЦ", [evaluate(observations, network, now=NOW)], NOW)
    table = text_table(document, evidence_width=40)
    lines = table.splitlines()
    assert lines[0].startswith("Регион 99 · МИАЦ · lab-portal · zapis.miac99.test: готово 10 из 12")
    # 12 items, then the expiry section (no state file in these observations)
    assert lines[13].startswith("  Сроки действия (/var/lib/esia-onboard/expiry.json)")
    assert "playbooks/monitoring.yml" in lines[14]
    lines = lines[:13]
    assert any(line.lstrip().startswith("[~]") and "Доступ к тестовой среде" in line for line in lines)
    assert any(line.lstrip().startswith("[ ]") and "Имя портала" in line for line in lines)
    assert all(len(line.split("  ")[-1].strip()) <= 40 for line in lines[1:])
    assert sum(line.endswith("…") for line in lines) >= 5


# -- expiry (the host's state file, roles/portal_monitoring) ------------------------------


def expiry_state(*entries: dict) -> dict:
    return {
        "schema": "esia-onboard/expiry/1",
        "generated_at": "2026-11-24T06:00:00Z",
        "last_run": 0,
        "warn_days": 30,
        "critical_days": 7,
        "entries": list(entries),
    }


def cert_entry(kind: str, name: str, not_after: dt.datetime, **extra) -> dict:
    return {
        "type": "certificate",
        "kind": kind,
        "name": name,
        "path": f"/etc/{name}.pem",
        "not_after": not_after.isoformat(),
        "not_after_timestamp": int(not_after.timestamp()),
        "days_left": 999,  # the host's figure of its last run: the report counts again from now
        "level": "ok",
        **extra,
    }


def test_expiry_days_are_counted_from_now_and_judged_by_the_inventory_thresholds():
    observations, network = complete()
    observations["settings"].update(expiry_warn_days=60, expiry_critical_days=10)
    observations["on_host"]["expiry"] = {
        "file": "/var/lib/esia-onboard/expiry.json",
        "state": expiry_state(
            cert_entry("tls", "zapis.miac99.test", NOW + dt.timedelta(days=40, hours=1)),
            cert_entry("gost", "esia_99", NOW + dt.timedelta(days=9, hours=23)),
            cert_entry("esia", "old", NOW - dt.timedelta(hours=2)),
            cert_entry("tls", "99.2dr.ru", NOW + dt.timedelta(days=200)),
            {"type": "licence", "kind": "cryptopro", "name": "csp", "path": "/x.fact", "level": "permanent"},
            {"type": "certificate", "kind": "esia", "name": "gone", "path": "/y", "level": "error", "error": "missing"},
        ),
    }
    expiry = evaluate(observations, network, now=NOW)["expiry"]
    shown = {(e["kind"], e["name"]): (e["days_left"], e["level"]) for e in expiry["entries"]}
    assert shown == {
        ("tls", "zapis.miac99.test"): (40, "warning"),
        ("gost", "esia_99"): (9, "critical"),
        ("esia", "old"): (-1, "expired"),
        ("tls", "99.2dr.ru"): (200, "ok"),
        ("cryptopro", "csp"): (None, "permanent"),
        ("esia", "gone"): (None, "error"),
    }
    assert expiry["level"] == "error" and (expiry["warn_days"], expiry["critical_days"]) == (60, 10)
    assert expiry["generated_at"] == "2026-11-24T06:00:00Z" and expiry["error"] is None
    document = region_document("99", "МИАЦ", [evaluate(observations, network, now=NOW)], NOW)
    jsonschema.validate(document, SCHEMA)
    table = text_table(document)
    assert "[!] tls zapis.miac99.test: до " in table and "ещё 40 дн." in table
    assert "[XX] esia old" in table


def test_expiry_without_a_state_file_says_what_to_run():
    observations, network = complete()
    observations["on_host"]["expiry"] = {"file": "/srv/e.json", "error": "file not found: /srv/e.json"}
    expiry = evaluate(observations, network, now=NOW)["expiry"]
    assert expiry["level"] == "error" and expiry["entries"] == []
    assert expiry["error"].startswith("/srv/e.json: file not found") and "playbooks/monitoring.yml" in expiry["error"]


def test_standard_solutions_deadline_is_shown_when_the_esia_rules_have_it(monkeypatch):
    import sys
    import types

    seen = {}

    def warnings(settings, today):
        seen.update(settings=settings, today=today)
        return ["esia_client_standard_solutions_date: got '2027-01-01'; from 2027-01-01 ..."]

    fake = types.ModuleType("module_utils.esia_onboard.esia")
    fake.standard_solutions_warnings = warnings
    monkeypatch.setitem(sys.modules, "module_utils.esia_onboard.esia", fake)
    import module_utils.esia_onboard as package

    monkeypatch.setattr(package, "esia", fake, raising=False)
    observations, network = complete()
    observations["settings"]["esia_settings"] = {"esia_client_api_version": "v1", "esia_client_environment": None}
    expiry = evaluate(observations, network, now=NOW)["expiry"]
    assert expiry["notices"] == ["esia_client_standard_solutions_date: got '2027-01-01'; from 2027-01-01 ..."]
    assert seen == {"settings": {"esia_client_api_version": "v1"}, "today": NOW}
