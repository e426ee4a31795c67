# ruff: noqa: RUF001 (Cyrillic IDN names are the point)
"""module_utils/esia_onboard/names.py: host names, zones, 8-FZ, the fallback, key names, mnemonic, container."""

import pytest

from module_utils.esia_onboard import names


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("zapis.miac77.ru", "zapis.miac77.ru"),
        ("Zapis.MIAC77.ru.", "zapis.miac77.ru"),
        ("запись.миац77.рф", "xn--80aa0aebnl.xn--77-6kcaf1d.xn--p1ai"),
        ("a-b.c1.ru", "a-b.c1.ru"),
        ("ru", None),
        ("zapis.miac77.ru\n", None),
        (" zapis.miac77.ru", None),
        ("zapis .miac77.ru", None),
        ("za_pis.miac77.ru", None),
        ("*.miac77.ru", None),
        ("-zapis.miac77.ru", None),
        ("zapis-.miac77.ru", None),
        ("z" * 64 + ".ru", None),
        (("a" * 60 + ".") * 5 + "ru", None),
        ("miac77..ru", None),
        ("203.0.113.10", None),
        ("", None),
        (77, None),
        ("\udcff.ru", None),
    ],
)
def test_host_name(value, canonical):
    if canonical and canonical.startswith("xn--80"):
        assert names.host_name(value) == value.encode("idna").decode()
    else:
        assert names.host_name(value) == canonical


def test_in_zone_is_label_aligned():
    assert names.in_zone("zapis.miac77.ru", "miac77.ru")
    assert names.in_zone("miac77.ru", "miac77.ru")
    assert not names.in_zone("zapismiac77.ru", "miac77.ru")


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("77", True),
        ("01", True),
        ("102", True),
        ("750", True),
        ("7", False),
        ("00", False),
        ("077", False),
        (77, False),
        ("77\n", False),
        ("1000", False),
    ],
)
def test_region_code(code, ok):
    assert names.region_code_valid(code) is ok
    assert (names.region_code_rule(code, {}) == []) is ok


def test_portal_name_rule():
    assert names.portal_name_rule("zapis.miac77.ru", {}) == []
    assert "host name" in names.portal_name_rule("zapis miac77.ru", {})[0]
    assert "8-FZ" in names.portal_name_rule("zapis.77.2dr.ru", {})[0]
    assert names.host_name_rule("77.2dr.ru", {}) == []
    assert names.host_name_rule("77 .2dr.ru", {})[0].startswith("portal_domain_fallback:")


def test_host_names_rule_names_each_item():
    found = names.host_names_rule(["a.miac77.ru", "bad name", "A.miac77.ru"], {})
    assert found[0].startswith("portal_domain_aliases[1]:")
    assert found[1].startswith("portal_domain_aliases[2]:") and "once" in found[1]
    assert names.host_names_rule([], {}) == []


def test_zone_rule():
    assert names.zone_rule("miac77.ru", {}) == []
    assert "8-FZ" in names.zone_rule("2dr.ru", {})[0]
    assert "8-FZ" in names.zone_rule("x.2dr.ru", {})[0]
    assert "DNS zone" in names.zone_rule("bad zone", {})[0]


ZONE = {"portal_domain_zone": "miac77.ru", "portal_domain_fallback": "77.2dr.ru"}


@pytest.mark.parametrize(
    ("settings", "setting", "fragment"),
    [
        ({"portal_domain_name": "miac77.ru"}, "portal_domain_name", "apex"),
        ({"portal_domain_name": "zapis.other.ru"}, "portal_domain_name", "inside portal_domain_zone"),
        (
            {"portal_domain_name": "zapis.miac77.ru", "portal_domain_aliases": ["miac77.ru"]},
            "portal_domain_aliases[0]",
            "apex",
        ),
        (
            {"portal_domain_name": "zapis.miac77.ru", "portal_domain_aliases": ["zapis.miac77.ru"]},
            "portal_domain_aliases[0]",
            "already",
        ),
        ({"portal_domain_zone": "2dr.ru", "portal_domain_name": "77.2dr.ru"}, "portal_domain_name", "fallback"),
    ],
)
def test_names_in_zone_cross(settings, setting, fragment):
    found = names.names_in_zone_cross({**ZONE, **settings})
    assert any(p.startswith(setting + ":") and fragment in p for p in found), found


def test_names_in_zone_cross_passes_and_skips():
    assert (
        names.names_in_zone_cross(
            {**ZONE, "portal_domain_name": "zapis.miac77.ru", "portal_domain_aliases": ["www.zapis.miac77.ru"]}
        )
        == []
    )
    assert names.names_in_zone_cross({"portal_domain_name": "x.other.ru"}) == []  # no zone: nothing to judge
    assert names.names_in_zone_cross({**ZONE, "portal_domain_name": "bad name"}) == []


def test_fallback_cross():
    assert names.fallback_cross({"portal_region_code": "77", "portal_domain_fallback": "77.2dr.ru"}) == []
    assert "'77.2dr.ru'" in names.fallback_cross({"portal_region_code": "77", "portal_domain_fallback": "78.2dr.ru"})[0]
    assert names.fallback_cross({"portal_region_code": "7", "portal_domain_fallback": "78.2dr.ru"}) == []
    bad_region = names.fallback_cross({"portal_region_code": "7", "portal_domain_fallback": "7.2dr.ru"})
    assert bad_region and "'7.2dr.ru'" not in bad_region[0].split(";", 1)[1]
    assert names.fallback_cross({"portal_region_code": "77"}) == []


def test_national_tld_cross():
    on = {"portal_domain_require_national_tld": True}
    assert names.national_tld_cross({**on, "portal_domain_zone": "miac77.ru"}) == []
    assert names.national_tld_cross({**on, "portal_domain_zone": "миац.рф"}) == []
    assert names.national_tld_cross({**on, "portal_domain_zone": "miac.su"}) == []
    assert "national" in names.national_tld_cross({**on, "portal_domain_zone": "miac77.org"})[0]
    assert names.national_tld_cross({"portal_domain_zone": "miac77.org"}) == []
    assert names.national_tld_cross({**on, "portal_domain_zone": "bad zone"}) == []


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("miac77-portal-update", True),
        ("key.miac77.ru.", True),
        ("_key", True),
        ("bad key", False),
        ("", False),
        (".", False),
        ("-key", False),
        (5, False),
        ("a" * 254, False),
    ],
)
def test_key_name(value, ok):
    assert names.key_name_valid(value) is ok
    assert (names.key_name_rule(value, {}) == []) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("MIAC77PORTAL", True),
        ("m.i_a-c", True),
        ("a", False),
        ("_MIAC", False),
        ("MIAC 77", False),
        ("MIAC77\n", False),
        ("M" * 65, False),
        (77, False),
    ],
)
def test_mnemonic(value, ok):
    assert names.mnemonic_valid(value) is ok
    assert (names.mnemonic_rule(value, {}) == []) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("esia_77", True),
        ("_x", True),
        ("e", True),
        (".esia", False),
        ("-esia", False),
        ("esia 77", False),
        ("e" * 65, False),
        (None, False),
    ],
)
def test_container(value, ok):
    assert names.container_valid(value) is ok
    assert (names.container_rule(value, {}) == []) is ok


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("_acme-challenge.zapis.miac77.ru.", "_acme-challenge.zapis.miac77.ru"),
        ("*.miac77.ru", "*.miac77.ru"),
        ("localhost", "localhost"),
        ("a b.ru", None),
        (".", None),
        ("", None),
        (None, None),
        ("x" * 254, None),
        ("\udcff.ru", None),
    ],
)
def test_dns_name(value, canonical):
    assert names.dns_name(value) == canonical
