"""Pure parts of library/portal_domain_rrset.py: addresses, names, values, the plan and the diff."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import ansible.module_utils
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

_MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

_PATH = Path(__file__).resolve().parents[2] / "library" / "portal_domain_rrset.py"
_SPEC = importlib.util.spec_from_file_location("portal_domain_rrset", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
rrset = importlib.util.module_from_spec(_SPEC)
sys.modules["portal_domain_rrset"] = rrset
_SPEC.loader.exec_module(rrset)

RrsetError = rrset.RrsetError


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        (" 192.0.2.53:5353 ", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
    ],
)
def test_parse_endpoint_accepts_addresses(server: str, expected: tuple[str, int]) -> None:
    assert rrset.parse_endpoint(server, 53) == expected


@pytest.mark.parametrize(
    ("server", "fragment"),
    [
        ("ns1.miac77.ru", "not an IP address"),
        ("ns1.miac77.ru:53", "not an IP address"),
        ("192.0.2.53:dns", "is not a number"),
        ("192.0.2.53:0", "out of range"),
        ("192.0.2.53:70000", "out of range"),
        ("[2001:db8::53", "not an address"),
        ("[2001:db8::53]53", "not an address"),
        ("999.0.2.53", "not an IP address"),
    ],
)
def test_parse_endpoint_rejects_what_nsupdate_cannot_use(server: str, fragment: str) -> None:
    with pytest.raises(RrsetError, match=fragment) as caught:
        rrset.parse_endpoint(server, 53)
    assert caught.value.reason == "config"


def test_endpoint_text_brackets_ipv6() -> None:
    assert rrset.endpoint_text("2001:db8::53", 53) == "[2001:db8::53]:53"
    assert rrset.endpoint_text("192.0.2.53", 5353) == "192.0.2.53:5353"


def test_absolute_name_is_lower_case_idna_with_a_dot() -> None:
    assert rrset.absolute_name("Zapis.MIAC77.ru") == "zapis.miac77.ru."
    assert rrset.absolute_name("zapis.miac77.ru.") == "zapis.miac77.ru."
    assert rrset.absolute_name("запись.миац.рф") == "xn--80ane1al0e.xn--80apl6b.xn--p1ai."


def test_absolute_name_rejects_empty_labels() -> None:
    with pytest.raises(RrsetError) as caught:
        rrset.absolute_name("bad..name")
    assert caught.value.reason == "config"


def test_canonical_rdata_compresses_ipv6_sorts_and_deduplicates() -> None:
    assert rrset.canonical_rdata("AAAA", ["2001:0db8:0000::0010", "2001:db8::10"], "n.") == ["2001:db8::10"]
    assert rrset.canonical_rdata("A", ["203.0.113.20", "203.0.113.10"], "n.") == ["203.0.113.10", "203.0.113.20"]


@pytest.mark.parametrize(("rdtype", "value"), [("A", "203.0.113"), ("A", "2001:db8::1"), ("AAAA", "203.0.113.10")])
def test_canonical_rdata_rejects_values_of_the_wrong_kind(rdtype: str, value: str) -> None:
    with pytest.raises(RrsetError, match=re.escape(f"not a valid {rdtype} value for zapis.miac77.ru.")) as caught:
        rrset.canonical_rdata(rdtype, [value], "zapis.miac77.ru.")
    assert caught.value.reason == "config"


def test_normalise_wanted_fills_defaults_and_rejects_an_empty_set() -> None:
    assert rrset.normalise_wanted(
        [{"name": "Zapis.miac77.ru", "type": "a", "ttl": None, "rdata": ["203.0.113.10"]}]
    ) == [{"name": "zapis.miac77.ru.", "type": "A", "ttl": 300, "rdata": ["203.0.113.10"]}]
    with pytest.raises(RrsetError, match=re.escape("no value given for zapis.miac77.ru. A")):
        rrset.normalise_wanted([{"name": "zapis.miac77.ru", "type": "A", "ttl": 300, "rdata": []}])
    with pytest.raises(RrsetError, match="'BOGUS' is not a record type"):
        rrset.normalise_wanted([{"name": "zapis.miac77.ru", "type": "bogus", "ttl": 300, "rdata": ["x"]}])


WANT = {"name": "zapis.miac77.ru.", "type": "A", "ttl": 300, "rdata": ["203.0.113.10"]}


def test_plan_reports_an_absent_set_with_an_empty_before() -> None:
    absent = {"name": "zapis.miac77.ru.", "type": "A", "ttl": None, "rdata": []}
    assert rrset.plan([absent], [WANT], compare_ttl=True) == [{**WANT, "before": {"ttl": None, "rdata": []}}]


def test_plan_is_empty_when_the_set_matches() -> None:
    assert rrset.plan([dict(WANT)], [WANT], compare_ttl=True) == []


def test_plan_counts_the_ttl_only_when_asked() -> None:
    other_ttl = {**WANT, "ttl": 3600}
    assert rrset.plan([other_ttl], [WANT], compare_ttl=False) == []
    assert rrset.plan([other_ttl], [WANT], compare_ttl=True) == [
        {**WANT, "before": {"ttl": 3600, "rdata": ["203.0.113.10"]}}
    ]


def test_plan_sees_an_extra_value_as_a_difference() -> None:
    extra = {**WANT, "rdata": ["203.0.113.10", "203.0.113.99"]}
    assert rrset.plan([extra], [WANT], compare_ttl=True)[0]["before"]["rdata"] == ["203.0.113.10", "203.0.113.99"]


def test_plan_matches_sets_by_name_and_type() -> None:
    aaaa = {"name": "zapis.miac77.ru.", "type": "AAAA", "ttl": 300, "rdata": ["203.0.113.10"]}
    assert rrset.plan([aaaa], [WANT], compare_ttl=True)[0]["before"] == {"ttl": None, "rdata": []}


def test_describe_names_the_server_the_old_and_the_new_values() -> None:
    change = {**WANT, "before": {"ttl": 600, "rdata": ["198.51.100.1"]}}
    assert (
        rrset.describe(change, "192.0.2.53:53", compare_ttl=True)
        == "zapis.miac77.ru. A: 192.0.2.53:53 answers 198.51.100.1 (TTL 600), wanted 203.0.113.10 (TTL 300)"
    )
    absent = {**WANT, "before": {"ttl": None, "rdata": []}}
    assert rrset.describe(absent, "system resolver", compare_ttl=False) == (
        "zapis.miac77.ru. A: system resolver answers nothing, wanted 203.0.113.10"
    )


def test_render_diff_shows_old_and_new_zone_lines() -> None:
    current = [{**WANT, "rdata": ["198.51.100.1"]}, {"name": "www.miac77.ru.", "type": "A", "ttl": None, "rdata": []}]
    wanted = [WANT, {**WANT, "name": "www.miac77.ru."}]
    diff = rrset.render_diff(current, wanted, "miac77.ru. at 192.0.2.53:53")
    assert diff["before"] == "zapis.miac77.ru. 300 IN A 198.51.100.1\n"
    assert diff["after"] == "www.miac77.ru. 300 IN A 203.0.113.10\nzapis.miac77.ru. 300 IN A 203.0.113.10\n"
    assert diff["before_header"] == "miac77.ru. at 192.0.2.53:53 (now)"
    assert diff["after_header"] == "miac77.ru. at 192.0.2.53:53 (wanted)"


def test_tsig_key_error_never_contains_the_secret() -> None:
    secret = "not-base64-secret!!"
    with pytest.raises(RrsetError) as caught:
        rrset.tsig_key("miac77-portal-update", secret, "hmac-sha256", "192.0.2.53:53")
    assert caught.value.reason == "tsig"
    assert "192.0.2.53:53" in str(caught.value)
    assert secret not in str(caught.value)


def test_run_refuses_a_direct_query_without_a_server() -> None:
    params = {
        "server": "",
        "port": 53,
        "recursion": False,
        "timeout": 1.0,
        "attempts": 1,
        "retry_delay": 0.0,
        "key_name": None,
        "key_secret": None,
        "key_algorithm": "hmac-sha256",
        "zone": None,
        "wanted": [],
        "compare_ttl": True,
        "on_difference": "ignore",
        "on_error": "fail",
        "hint": "",
    }
    with pytest.raises(RrsetError, match="server address is needed") as caught:
        rrset.run(params)
    assert caught.value.reason == "config"


@pytest.mark.parametrize(
    ("after", "before", "newer"),
    [(2, 1, True), (1, 1, False), (1, 2, False), (0, 4294967295, True), (4294967295, 0, False), (2**31, 0, False)],
)
def test_serial_newer_follows_rfc1982(after: int, before: int, newer: bool) -> None:
    assert rrset.serial_newer(after, before) is newer


@given(st.integers(0, 2**32 - 1), st.integers(1, 2**31 - 1))
def test_serial_newer_holds_across_the_wrap(serial: int, step: int) -> None:
    moved = (serial + step) % 2**32
    assert rrset.serial_newer(moved, serial)
    assert not rrset.serial_newer(serial, moved)


def _documented(name: str) -> dict:
    return yaml.safe_load(getattr(rrset, name))


@pytest.mark.parametrize("name", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_module_docs_are_yaml(name: str) -> None:
    assert _documented(name)


def _spec_of(doc_option: dict) -> dict:
    """The argument-spec entry a documented option implies."""
    spec = {"type": doc_option.get("type", "str")}
    for key in ("default", "choices", "elements", "required"):
        if key in doc_option and not (key == "required" and doc_option[key] is False):
            spec[key] = doc_option[key]
    if "suboptions" in doc_option:
        spec["options"] = {name: _spec_of(sub) for name, sub in doc_option["suboptions"].items()}
    return spec


def test_module_documentation_matches_its_argument_spec() -> None:
    documented = {name: _spec_of(option) for name, option in _documented("DOCUMENTATION")["options"].items()}
    actual = {name: {k: v for k, v in spec.items() if k != "no_log"} for name, spec in rrset.ARGUMENT_SPEC.items()}
    assert documented == actual


ROLE = Path(__file__).resolve().parents[2] / "roles" / "portal_domain"


def test_role_defaults_are_all_described_in_argument_specs() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert set(defaults) <= set(options)
    for name, value in defaults.items():
        if isinstance(value, str) and "{{" in value:
            continue  # a templated default (documented in the description)
        assert options[name].get("default") == value, name
        assert not options[name].get("required", False), name
