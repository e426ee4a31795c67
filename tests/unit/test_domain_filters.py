"""fqdn_valid, fqdn_in_zone and region_code_valid: the domain checks used by validate.yml."""

import pytest

from filter_plugins.domain import FilterModule, fqdn_in_zone, fqdn_valid, region_code_valid


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("zapis.miac77.ru", "miac77.ru"),
        ("miac77.ru", "miac77.ru"),
        ("ZAPIS.Miac77.RU", "miac77.ru"),
        ("zapis.miac77.ru.", "miac77.ru"),
        ("zapis.miac77.ru", "MIAC77.RU."),
        ("a.b.c.miac77.ru", "miac77.ru"),
        ("77.2dr.ru", "2dr.ru"),
        ("*.miac77.ru", "miac77.ru"),
        ("_acme-challenge.zapis.miac77.ru", "miac77.ru"),
        # IDN: Unicode and punycode spellings (punycode from the `idna` package) compare equal.
        ("запись.миац.рф", "миац.рф"),
        ("запись.миац.рф", "xn--80apl6b.xn--p1ai"),
        ("xn--80apl6b.xn--p1ai", "МИАЦ.РФ"),
    ],
)
def test_names_in_zone(name, zone):
    assert fqdn_in_zone(name, zone) is True


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("evilmiac77.ru", "miac77.ru"),  # suffix but not on a label boundary
        ("miac77.ru", "zapis.miac77.ru"),  # the zone is below the name
        ("zapis.miac77.ru", "miac78.ru"),
        ("miac77.ru.evil.com", "miac77.ru"),
        ("zapis.miac77.ru", "2dr.ru"),
        ("77.2dr.ru", "miac77.ru"),
        (".miac77.ru", "miac77.ru"),  # empty label
        ("a..miac77.ru", "miac77.ru"),
        ("zapis miac77.ru", "miac77.ru"),
        ("", "miac77.ru"),
        ("zapis.miac77.ru", ""),
        ("zapis.miac77.ru", "."),  # the root is not an owned zone
        (None, "miac77.ru"),
        ("zapis.miac77.ru", None),
        (["zapis.miac77.ru"], "miac77.ru"),
        (77, "ru"),
    ],
)
def test_names_not_in_zone(name, zone):
    assert fqdn_in_zone(name, zone) is False


@pytest.mark.parametrize(
    "name",
    [
        "miac77.ru",
        "zapis.miac77.ru.",
        "localhost",
        "a-b.ru",
        "x" * 63 + ".ru",
        "*.miac77.ru",
        "запись.миац.рф",
        "_dmarc.miac77.ru",
    ],
)
def test_valid_names(name):
    assert fqdn_valid(name) is True


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "-a.ru",
        "a-.ru",
        "x" * 64 + ".ru",  # label longer than 63
        ".".join(["abcdefghi"] * 26),  # 259 characters
        "a b.ru",
        "a..ru",
        "zapis.miac77.ru/",
        "zapis.*.ru",  # a wildcard only as the first label
        "http://zapis.miac77.ru",
        "203.0.113.10:53",
        None,
        42,
        True,
        ["a.ru"],
    ],
)
def test_invalid_names(name):
    assert fqdn_valid(name) is False


@pytest.mark.parametrize(
    "code", ["01", "02", "07", "10", "50", "77", "78", "90", "99", "102", "116", "750", "790", "799", "197"]
)
def test_valid_region_codes(code):
    assert region_code_valid(code) is True


@pytest.mark.parametrize(
    "code",
    [
        "00",
        "0",
        "7",
        "100",  # composite code needs a valid two-digit tail
        "077",  # leading zero on a three-digit code
        "1000",
        "7 7",
        " 77",
        "77\n",
        "7a",
        "",
        "\u0667\u0667",  # Arabic-Indic digits: str.isdigit() would say yes
        77,
        102,
        7.7,
        None,
        True,
        ["77"],
    ],
)
def test_invalid_region_codes(code):
    assert region_code_valid(code) is False


def test_filters_are_registered_under_their_public_names():
    filters = FilterModule().filters()
    assert filters["fqdn_in_zone"] is fqdn_in_zone
    assert filters["region_code_valid"] is region_code_valid
    assert filters["fqdn_valid"] is fqdn_valid
