"""Pure parts of library/portal_domain_update.py: the wanted sets, the refusals, the backup file, the docs."""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import ansible.module_utils
import pytest
import yaml

_MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

_PATH = Path(__file__).resolve().parents[2] / "library" / "portal_domain_update.py"
_SPEC = importlib.util.spec_from_file_location("portal_domain_update", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
update = importlib.util.module_from_spec(_SPEC)
sys.modules["portal_domain_update"] = update
_SPEC.loader.exec_module(update)

DnsError = update.DnsError
ZONE = "miac77.ru."


def test_wanted_sets_give_every_distinct_name_a_and_aaaa() -> None:
    sets = update.wanted_sets(
        ["Zapis.miac77.ru", "zapis.miac77.ru.", "www.miac77.ru"], "203.0.113.10", "2001:db8::0010", 600
    )

    assert [(s["name"], s["type"]) for s in sets] == [
        ("zapis.miac77.ru.", "A"),
        ("zapis.miac77.ru.", "AAAA"),
        ("www.miac77.ru.", "A"),
        ("www.miac77.ru.", "AAAA"),
    ]
    assert sets[1]["rdata"] == ["2001:db8::10"]
    assert {s["ttl"] for s in sets} == {600}


def test_without_an_ipv6_address_aaaa_sets_are_left_alone() -> None:
    assert [s["type"] for s in update.wanted_sets(["zapis.miac77.ru"], "203.0.113.10", "", 300)] == ["A"]


@pytest.mark.parametrize("address", ["203.0.113", "2001:db8::1", "zapis"])
def test_a_value_that_is_not_an_ipv4_address_is_refused(address: str) -> None:
    with pytest.raises(DnsError) as caught:
        update.wanted_sets(["zapis.miac77.ru"], address, "", 300)
    assert caught.value.reason == "config"


@pytest.mark.parametrize(("name", "reason"), [("miac77.ru", "apex"), ("zapis.miac78.ru", "not_in_zone")])
def test_the_apex_and_names_outside_the_zone_are_refused(name: str, reason: str) -> None:
    with pytest.raises(DnsError) as caught:
        update.check_names(ZONE, update.wanted_sets(["zapis.miac77.ru", name], "203.0.113.10", "", 300))
    assert caught.value.reason == reason


def change(before: list[str], after: list[str], before_ttl: int | None = 300, ttl: int = 300) -> dict:
    return {
        "name": "zapis.miac77.ru.",
        "type": "A",
        "ttl": ttl,
        "rdata": after,
        "before": {"ttl": before_ttl, "rdata": before},
    }


def test_only_a_set_holding_other_values_counts_as_existing() -> None:
    absent = change([], ["203.0.113.10"], before_ttl=None)
    ttl_only = change(["203.0.113.10"], ["203.0.113.10"], before_ttl=3600)
    other = change(["192.0.2.1"], ["203.0.113.10"])
    more = change(["203.0.113.10", "192.0.2.1"], ["203.0.113.10"])

    assert update.existing_sets([absent, ttl_only, other, more]) == [other, more]


def test_the_refusal_names_the_setting_the_name_what_exists_and_what_would_be_written() -> None:
    err = update.refuse_existing(
        [change(["192.0.2.1"], ["203.0.113.10"], 3600)], "portal_domain_replace_existing", "192.0.2.53:53"
    )

    assert err.reason == "existing"
    text = str(err)
    assert text.startswith("portal_domain_replace_existing is false")
    assert "zapis.miac77.ru. A holds 192.0.2.1 (TTL 3600) at 192.0.2.53:53" in text
    assert "this run would write 203.0.113.10 (TTL 300)" in text
    assert "set portal_domain_replace_existing: true" in text


def test_the_backup_is_an_nsupdate_script_of_the_old_sets() -> None:
    changes = [
        change(["192.0.2.1"], ["203.0.113.10"], 3600),
        {**change([], ["203.0.113.10"], None), "name": "www.miac77.ru."},
    ]

    text = update.backup_text(ZONE, "192.0.2.53:5353", 42, changes, "2026-12-01T22:00:00Z")

    commands = [line for line in text.splitlines() if line and not line.startswith(";")]
    assert commands == [
        "server 192.0.2.53 5353",
        f"zone {ZONE}",
        "update delete www.miac77.ru. IN A",
        "update delete zapis.miac77.ru. IN A",
        "update add zapis.miac77.ru. 3600 IN A 192.0.2.1",
        "send",
    ]
    assert ";   zapis.miac77.ru. 3600 IN A 192.0.2.1" in text
    assert "SOA serial 42" in text
    assert "203.0.113.10" not in text


def test_write_backup_never_overwrites_and_keeps_the_file_private(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, 22, 0, 0, tzinfo=UTC)
    target = tmp_path / "artifacts" / "77" / "dns"

    first = update.write_backup(str(target), ZONE, "one\n", now)
    second = update.write_backup(str(target), ZONE, "two\n", now)

    assert Path(first).name == "20261201T220000Z-miac77.ru.nsupdate"
    assert Path(second).name == "20261201T220000Z-miac77.ru-1.nsupdate"
    assert Path(first).read_text() == "one\n"
    assert oct(os.stat(first).st_mode & 0o777) == "0o640"


def test_sending_needs_a_key_before_anything_is_asked() -> None:
    params = {
        "zone": "miac77.ru",
        "names": ["zapis.miac77.ru"],
        "address": "203.0.113.10",
        "address6": "",
        "ttl": 300,
        "server": "127.0.0.1",
        "port": 9,
        "send": True,
        "key_name": None,
    }
    with pytest.raises(DnsError) as caught:
        update.converge(params, check_mode=False)
    assert caught.value.reason == "config"
    assert "key_name" in str(caught.value)


def _documented(name: str) -> dict:
    return yaml.safe_load(getattr(update, name))


@pytest.mark.parametrize("name", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_module_docs_are_yaml(name: str) -> None:
    assert _documented(name)


def _spec_of(option: dict) -> dict:
    spec = {"type": option.get("type", "str")}
    for key in ("default", "choices", "elements", "required"):
        if key in option and not (key == "required" and option[key] is False):
            spec[key] = option[key]
    return spec


def test_module_documentation_matches_its_argument_spec() -> None:
    documented = {name: _spec_of(option) for name, option in _documented("DOCUMENTATION")["options"].items()}
    actual = {name: {k: v for k, v in spec.items() if k != "no_log"} for name, spec in update.ARGUMENT_SPEC.items()}
    assert documented == actual
