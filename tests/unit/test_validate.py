"""portal_config_problems: every bad value is named with its variable and a fix;
the shipped inventories pass."""

from pathlib import Path

import pytest
import yaml

from filter_plugins.validate import inn_valid, ogrn_valid, portal_config_problems

REPO = Path(__file__).resolve().parents[2]


def inventory_config(name: str) -> dict:
    merged: dict = {}
    for path in sorted((REPO / "inventories" / name / "group_vars" / "all").glob("*.yml")):
        if path.read_bytes().startswith(b"$ANSIBLE_VAULT"):
            continue
        merged.update(yaml.safe_load(path.read_text()) or {})
    if name == "lab":  # the lab's templated values, resolved as Ansible would
        merged["portal_domain_dns_port"] = merged["lab_bind_port"]
        merged["portal_domain_resolvers"] = [f"127.0.0.1:{merged['lab_bind_port']}"]
    return merged


@pytest.fixture
def region77() -> dict:
    return inventory_config("region77")


@pytest.mark.parametrize("inventory", ["region77", "lab"])
def test_shipped_inventories_pass(inventory):
    assert portal_config_problems(inventory_config(inventory)) == []


def problems_for(config: dict, **changes) -> list[str]:
    changed = dict(config)
    for key, value in changes.items():
        if value is KeyError:
            changed.pop(key, None)
        else:
            changed[key] = value
    return portal_config_problems(changed)


BAD_VALUES = [
    ("portal_region_code", 77, "quoted string"),
    ("portal_region_code", "7", "quoted string"),
    ("portal_region_code", KeyError, "not set"),
    ("portal_domain_name", "zapis.example.org", "inside portal_domain_zone"),
    ("portal_domain_name", "77.2dr.ru", "8-FZ"),
    ("portal_domain_name", "zapis.miac77.2dr.ru", "8-FZ"),
    ("portal_domain_zone", "2dr.ru", "8-FZ"),
    ("portal_domain_name", "not a name", "host name"),
    ("portal_domain_fallback", "78.2dr.ru", "'77.2dr.ru'"),
    ("portal_domain_fallback", "zapis.miac77.ru", "'77.2dr.ru'"),
    ("portal_domain_address", "203.0.113", "IPv4"),
    ("portal_domain_dns_server", "ns1.miac77.ru", "IP address"),
    ("portal_domain_dns_port", 70000, "port number"),
    ("portal_domain_tsig_algorithm", "hmac-sha999", "hmac-sha256"),
    ("portal_domain_resolvers", ["dns.example:53"], "ip:port"),
    ("portal_domain_resolvers", "127.0.0.1:53", "list"),
    ("portal_https_certificate_source", "letsencrypt", "provided"),
    ("portal_https_fallback_certificate_source", "acme", "ownca"),
    ("portal_https_fallback_mode", "proxy", "redirect"),
    ("portal_https_key_type", "dsa", "ecdsa"),
    ("cryptopro_backend", "vipnet", "openssl_gost"),
    ("cryptopro_provider_type", 75, "GOST 2001"),
    ("cryptopro_provider_type", True, "80"),
    ("cryptopro_container", "esia 77", "container name"),
    ("esia_client_environment", "production", "prod"),
    ("esia_client_api_version", "v3", "v2"),
    ("esia_client_mnemonic", "", "mnemonic"),
    ("esia_client_mnemonic", KeyError, "mnemonic"),
    ("esia_client_scopes", ["openid", "fulname"], "fullname"),
    ("esia_client_scopes", ["fullname"], "openid"),
    ("esia_client_scopes", [], "esia_client_scopes"),
    ("portal_service_user", "Esia Portal", "system account"),
    ("portal_service_home", "var/lib/x", "absolute path"),
]


@pytest.mark.parametrize(("variable", "value", "hint"), BAD_VALUES)
def test_each_bad_value_is_named_with_a_fix(region77, variable, value, hint):
    problems = problems_for(region77, **{variable: value})
    matching = [p for p in problems if p.startswith(variable + ":")]
    assert matching, f"no problem reported for {variable}={value!r}: {problems}"
    assert any(hint in p for p in matching), matching


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("ogrn", "1027700000007", "check digit"),
        ("ogrn", "102770000000", "13-digit"),
        ("inn", "7700000008", "check digit"),
        ("inn", 7700000009, "10-digit"),
        ("name", "", "name"),
        ("contact", {"name": "X", "email": "not-an-email", "phone": "+7 495 000-00-00"}, "e-mail"),
    ],
)
def test_organisation_block(region77, field, value, hint):
    org = {**region77["portal_org"], field: value}
    problems = problems_for(region77, portal_org=org)
    assert any(p.startswith("portal_org.") and hint in p for p in problems), problems


def test_all_problems_reported_at_once(region77):
    problems = problems_for(
        region77, portal_region_code="7", cryptopro_provider_type=75, esia_client_environment="stage"
    )
    named = {p.split(":", 1)[0] for p in problems}
    assert {"portal_region_code", "cryptopro_provider_type", "esia_client_environment"} <= named


def test_national_tld_is_optional(region77):
    foreign = {"portal_domain_zone": "miac77.org", "portal_domain_name": "zapis.miac77.org"}
    assert problems_for(region77, **foreign, portal_domain_require_national_tld=False) == []
    assert problems_for(region77, **foreign, portal_domain_require_national_tld=KeyError) == []
    assert any("national" in p for p in problems_for(region77, **foreign, portal_domain_require_national_tld=True))


def test_checksums_against_published_examples():
    # OGRN and INN of the Federal Tax Service itself (public register data).
    assert ogrn_valid("1047707030513")
    assert inn_valid("7707329152")
    assert not ogrn_valid("1047707030514")
    assert not inn_valid("7707329153")


def test_rejects_non_mapping():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        portal_config_problems(["not", "a", "mapping"])


def test_fallback_hint_does_not_build_on_a_bad_region_code(region77):
    problems = problems_for(region77, portal_region_code="7", portal_domain_fallback="7.2dr.ru")
    fallback = [p for p in problems if p.startswith("portal_domain_fallback:")]
    assert fallback and "'7.2dr.ru'" not in fallback[0].split(";", 1)[1], fallback
