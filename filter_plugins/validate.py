"""Filter `portal_config_problems`: every problem of one host's configuration.

playbooks/validate.yml hands it the public (non-secret) variables of a host
and fails with the whole list, so an operator fixes everything in one pass.
Each problem names the variable, the bad value and the fix.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.errors import AnsibleFilterError

FALLBACK_ZONE = "2dr.ru"
NATIONAL_TLDS = ("ru", "xn--p1ai", "su")  # .ru, .рф, .su
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MNEMONIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What playbooks/validate.yml passes for a variable that is not set at all.
UNSET = "__esia_onboard_unset__"
_TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5")


def _sibling(name: str) -> ModuleType:
    """Load a sibling filter module (Ansible does not import filter_plugins as a package)."""
    key = f"esia_onboard_filter_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        if spec is None or spec.loader is None:
            raise AnsibleFilterError(f"portal_config_problems: cannot load filter_plugins/{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def fqdn(value: Any) -> str | None:
    """The name in lower case without a trailing dot, or None when it is no host name."""
    if not isinstance(value, str):
        return None
    name = value.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return name


def ogrn_valid(value: Any) -> bool:
    """OGRN of a legal entity: 13 digits, the last is (first 12 mod 11) mod 10."""
    return (
        isinstance(value, str) and bool(re.fullmatch(r"\d{13}", value)) and int(value[:12]) % 11 % 10 == int(value[12])
    )


def inn_valid(value: Any) -> bool:
    """INN of a legal entity: 10 digits with the FNS check digit."""
    if not (isinstance(value, str) and re.fullmatch(r"\d{10}", value)):
        return False
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    return sum(int(d) * w for d, w in zip(value, weights, strict=False)) % 11 % 10 == int(value[9])


def _show(value: Any) -> str:
    return "nothing (not set)" if value is None else repr(value)


class _Problems(list):
    def add(self, variable: str, value: Any, expected: str) -> None:
        self.append(f"{variable}: got {_show(value)}; {expected}")


def _check_who(c: dict, p: _Problems) -> None:
    region = c.get("portal_region_code")
    if not _sibling("domain").region_code_valid(region):
        p.add(
            "portal_region_code",
            region,
            'set the subject code as a quoted string of 2 digits (3 for e.g. "102"): portal_region_code: "77"',
        )
    org = c.get("portal_org")
    if not isinstance(org, dict):
        p.add(
            "portal_org", org, "set a mapping with name, short_name, ogrn, inn and contact (see inventories/region77)"
        )
        return
    for key in ("name", "short_name"):
        if not isinstance(org.get(key), str) or not org[key].strip():
            p.add(f"portal_org.{key}", org.get(key), "set the organisation's name as registered in ESIA (EGRUL)")
    if not ogrn_valid(org.get("ogrn")):
        p.add(
            "portal_org.ogrn",
            org.get("ogrn"),
            "set the 13-digit OGRN from EGRUL as a quoted string; its check digit must match",
        )
    if not inn_valid(org.get("inn")):
        p.add(
            "portal_org.inn",
            org.get("inn"),
            "set the 10-digit INN of the organisation as a quoted string; its check digit must match",
        )
    contact = org.get("contact")
    if not isinstance(contact, dict):
        p.add("portal_org.contact", contact, "set a mapping with name, email and phone of the responsible employee")
    else:
        if not isinstance(contact.get("name"), str) or not contact["name"].strip():
            p.add("portal_org.contact.name", contact.get("name"), "set the responsible employee's full name")
        if not isinstance(contact.get("email"), str) or not _EMAIL.match(contact["email"]):
            p.add("portal_org.contact.email", contact.get("email"), "set an e-mail address such as esia@miac77.ru")
        if not isinstance(contact.get("phone"), str) or len(re.sub(r"\D", "", contact["phone"])) < 10:
            p.add(
                "portal_org.contact.phone",
                contact.get("phone"),
                'set a phone number with its area code, e.g. "+7 (495) 000-00-00"',
            )
    for name in ("portal_service_user", "portal_service_group"):
        if not isinstance(c.get(name), str) or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", c[name]):
            p.add(name, c.get(name), "set a system account name such as esia-portal")
    home = c.get("portal_service_home")
    if not isinstance(home, str) or not home.startswith("/"):
        p.add("portal_service_home", home, "set an absolute path such as /var/lib/esia-portal")


def _check_domain(c: dict, p: _Problems) -> None:
    in_zone = _sibling("domain").fqdn_in_zone
    name, zone = fqdn(c.get("portal_domain_name")), fqdn(c.get("portal_domain_zone"))
    if name is None:
        p.add(
            "portal_domain_name",
            c.get("portal_domain_name"),
            "set the portal's host name in the MIAC zone, e.g. zapis.miac77.ru",
        )
    if zone is None:
        p.add("portal_domain_zone", c.get("portal_domain_zone"), "set the DNS zone the MIAC owns, e.g. miac77.ru")
    if zone and in_zone(zone, FALLBACK_ZONE):
        p.add(
            "portal_domain_zone", zone, f"8-FZ: the portal must live in a zone the MIAC owns, not under {FALLBACK_ZONE}"
        )
    if name and in_zone(name, FALLBACK_ZONE):
        p.add(
            "portal_domain_name",
            name,
            f"8-FZ: {FALLBACK_ZONE} names are only the fallback; set a name in the MIAC's own zone",
        )
    elif name and zone and not in_zone(name, zone):
        p.add(
            "portal_domain_name",
            name,
            f"must be inside portal_domain_zone {zone!r} (e.g. zapis.{zone}), or fix the zone",
        )
    if zone and c.get("portal_domain_require_national_tld") and zone.rsplit(".", 1)[-1] not in NATIONAL_TLDS:
        p.add("portal_domain_zone", zone, "portal_domain_require_national_tld is on: use a zone in .ru, .рф or .su")
    region = c.get("portal_region_code")
    fallback = c.get("portal_domain_fallback")
    region_ok = _sibling("domain").region_code_valid(region)
    expected = f"{region}.{FALLBACK_ZONE}" if region_ok else f"<region code>.{FALLBACK_ZONE}"
    if fqdn(fallback) != expected:
        p.add("portal_domain_fallback", fallback, f"the old name is <region code>.{FALLBACK_ZONE}: set {expected!r}")
    if name and name == fqdn(fallback):
        p.add("portal_domain_name", name, "must differ from the fallback name")
    address = c.get("portal_domain_address")
    try:
        ipaddress.IPv4Address(address)
    except (ValueError, TypeError):
        p.add("portal_domain_address", address, "set the IPv4 address the portal name points at, e.g. 203.0.113.10")
    server = c.get("portal_domain_dns_server")
    try:
        ipaddress.ip_address(server)
    except (ValueError, TypeError):
        p.add(
            "portal_domain_dns_server",
            server,
            "set the IP address of the zone's primary master (a host name is not accepted by nsupdate here)",
        )
    port = c.get("portal_domain_dns_port")
    if not (str(port).isdigit() and 0 < int(port) < 65536):
        p.add("portal_domain_dns_port", port, "set a port number, normally 53")
    if fqdn(c.get("portal_domain_tsig_name")) is None and not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", str(c.get("portal_domain_tsig_name") or "")
    ):
        p.add(
            "portal_domain_tsig_name",
            c.get("portal_domain_tsig_name"),
            "set the name of the TSIG key the zone's update policy grants",
        )
    if c.get("portal_domain_tsig_algorithm") not in _TSIG_ALGORITHMS:
        p.add(
            "portal_domain_tsig_algorithm",
            c.get("portal_domain_tsig_algorithm"),
            "use one of " + ", ".join(_TSIG_ALGORITHMS) + " (hmac-sha256 recommended)",
        )
    resolvers = c.get("portal_domain_resolvers")
    if not isinstance(resolvers, list):
        p.add("portal_domain_resolvers", resolvers, 'set a list of "ip:port" strings, or [] to ask the master')
    else:
        for resolver in resolvers:
            host, _, rport = (
                str(resolver).rpartition(":") if str(resolver).count(":") == 1 else (str(resolver), "", "53")
            )
            try:
                ipaddress.ip_address(host)
                ok = rport.isdigit() and 0 < int(rport) < 65536
            except ValueError:
                ok = False
            if not ok:
                p.add(
                    "portal_domain_resolvers",
                    resolver,
                    'each item is "ip:port" (or a bare IP for port 53), e.g. "192.0.2.53:53"',
                )


_CERTIFICATE_SOURCES = ("provided", "selfsigned", "ownca")


def _check_https(c: dict, p: _Problems) -> None:
    source = c.get("portal_https_certificate_source")
    if source not in _CERTIFICATE_SOURCES:
        p.add("portal_https_certificate_source", source, "use provided (production), ownca or selfsigned (lab/tests)")
    # Optional settings: checked only when the inventory sets them.
    if (
        "portal_https_fallback_certificate_source" in c
        and c["portal_https_fallback_certificate_source"] not in _CERTIFICATE_SOURCES
    ):
        p.add(
            "portal_https_fallback_certificate_source",
            c["portal_https_fallback_certificate_source"],
            "use provided, ownca or selfsigned, or leave it unset to follow portal_https_certificate_source",
        )
    if "portal_https_fallback_mode" in c and c["portal_https_fallback_mode"] not in ("serve", "redirect"):
        p.add(
            "portal_https_fallback_mode",
            c["portal_https_fallback_mode"],
            "use serve (the old name keeps serving the portal, as the seed asks) or redirect (to the MIAC name)",
        )
    if "portal_https_key_type" in c and c["portal_https_key_type"] not in ("ecdsa", "rsa"):
        p.add("portal_https_key_type", c["portal_https_key_type"], "use ecdsa (P-256, default) or rsa (3072 bit)")


def _check_cryptopro(c: dict, p: _Problems) -> None:
    backend = c.get("cryptopro_backend")
    if backend not in ("cryptopro", "openssl_gost"):
        p.add("cryptopro_backend", backend, "use cryptopro (CryptoPro CSP, production) or openssl_gost (lab, tests)")
    provider = c.get("cryptopro_provider_type")
    if isinstance(provider, bool) or str(provider) not in ("80", "81"):
        p.add(
            "cryptopro_provider_type",
            provider,
            "use 80 (GOST R 34.10-2012, 256 bit) or 81 (512 bit); 75 (GOST 2001) is refused by ESIA since 2019",
        )
    container = c.get("cryptopro_container")
    if not isinstance(container, str) or not _CONTAINER.match(container):
        p.add(
            "cryptopro_container",
            container,
            r"set a container name of letters, digits, '_', '-', '.' (it becomes \\.\HDIMAGE\<name>), e.g. esia_77",
        )


def _check_esia(c: dict, p: _Problems) -> None:
    environment = c.get("esia_client_environment")
    if environment not in ("test", "prod"):
        p.add("esia_client_environment", environment, "use test (first, per the Appendix E application) or prod")
    api = c.get("esia_client_api_version")
    if api not in ("v1", "v2"):
        p.add("esia_client_api_version", api, "use v2 (v2/ac + v3/te, the default) or v1 (legacy)")
    mnemonic = c.get("esia_client_mnemonic")
    if not isinstance(mnemonic, str) or not _MNEMONIC.match(mnemonic):
        p.add(
            "esia_client_mnemonic",
            mnemonic,
            "set the IS mnemonic issued by the ESIA technology portal (letters, digits, '_', '-', '.')",
        )
    scopes = c.get("esia_client_scopes")
    try:
        _sibling("esia").esia_scopes(scopes, c.get("esia_client_extra_scopes") or [])
    except AnsibleFilterError as error:
        p.add("esia_client_scopes", scopes if not isinstance(scopes, list) else f"{len(scopes)} items", str(error))


def portal_config_problems(config: dict) -> list[str]:
    """All problems of one host's public configuration (empty when it is fine)."""
    if not isinstance(config, dict):
        raise AnsibleFilterError(f"portal_config_problems expects a mapping of variables, got {type(config).__name__}")
    config = {key: value for key, value in config.items() if value != UNSET}
    problems = _Problems()
    for check in (_check_who, _check_domain, _check_https, _check_cryptopro, _check_esia):
        check(config, problems)
    return list(problems)


class FilterModule:
    def filters(self) -> dict:
        return {"portal_config_problems": portal_config_problems}
