"""Host names, zones, the 8-FZ rules, the fallback name, and other name-shaped settings.

Host names follow RFC 1123 (letters, digits and inner hyphens per label, no
underscore, no wildcard): these names go into A records, nginx server_name
and certificate SANs, where an underscore or a ``*`` is wrong. IDN names are
compared in their IDNA (punycode) form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem

FALLBACK_ZONE = "2dr.ru"
# .ru, .рф (xn--p1ai), .su
NATIONAL_TLDS = ("ru", "xn--p1ai", "su")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_KEY_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?", re.ASCII)
# A subject code as used in the <code>.2dr.ru names: "01".."99", or a
# three-digit composite code ("102", "750"): a digit 1-9 and a two-digit code.
_REGION_CODE = re.compile(r"(?:[1-9])?(?:0[1-9]|[1-9][0-9])", re.ASCII)
_MNEMONIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,63}", re.ASCII)
_CONTAINER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", re.ASCII)


def host_name(value: Any) -> str | None:
    """The canonical form (lower case, IDNA, no trailing dot) of a host name of 2+ labels, else None."""
    if not isinstance(value, str) or not value or value != value.strip():
        return None
    name = value[:-1] if value.endswith(".") else value
    name = name.lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253:
        return None
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():  # 203.0.113.10 is an address, not a name
        return None
    return name


_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)


def dns_name(value: Any) -> str | None:
    """The canonical form of any DNS owner name (one label or more; '_' labels and a leading '*' allowed).

    Wider than :func:`host_name`: service names (_acme-challenge, _dmarc) and
    wildcards live in the same zones. None when it is no DNS name.
    """
    if not isinstance(value, str):
        return None
    name = value.rstrip(".").lower() if value != "." else ""
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not name or len(name) > 253:
        return None
    labels = name.split(".")
    checked = labels[1:] if labels[0] == "*" and len(labels) > 1 else labels
    if not all(_DNS_LABEL.fullmatch(label) for label in checked):
        return None
    return name


def in_zone(name: str, zone: str) -> bool:
    """True when canonical ``name`` is ``zone`` or below it (label-aligned)."""
    return name == zone or name.endswith("." + zone)


def region_code_valid(value: Any) -> bool:
    """A quoted subject code "01".."99" or a three-digit composite code."""
    return isinstance(value, str) and _REGION_CODE.fullmatch(value) is not None


def region_code_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    if region_code_valid(value):
        return []
    return [
        problem(
            "portal_region_code",
            value,
            'set the subject code as a quoted string of 2 digits (3 for e.g. "102"): portal_region_code: "77"',
        )
    ]


def host_name_rule_for(setting: str, value: Any, example: str = "zapis.miac77.ru") -> list[str]:
    if host_name(value) is None:
        return [
            problem(
                setting,
                value,
                f"set a host name of letters, digits and hyphens, with dots between labels "
                f"and no spaces, e.g. {example}",
            )
        ]
    return []


def host_name_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    """portal_domain_fallback: a host name (its exact form is the fallback cross rule)."""
    return host_name_rule_for("portal_domain_fallback", value, "77.2dr.ru")


def portal_name_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    found = host_name_rule_for("portal_domain_name", value)
    if not found and in_zone(host_name(value) or "", FALLBACK_ZONE):
        found.append(
            problem(
                "portal_domain_name",
                value,
                f"8-FZ: {FALLBACK_ZONE} names are only the fallback; set a name in the MIAC's own zone",
            )
        )
    return found


def host_names_rule(value: list, settings: Mapping[str, Any], setting: str = "portal_domain_aliases") -> list[str]:
    found: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        item_found = host_name_rule_for(f"{setting}[{index}]", item, "www.zapis.miac77.ru")
        found += item_found
        canonical = host_name(item)
        if canonical and canonical in seen:
            found.append(problem(f"{setting}[{index}]", item, "list each name once"))
        if canonical:
            seen.add(canonical)
    return found


def zone_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    zone = host_name(value)
    if zone is None:
        return [problem("portal_domain_zone", value, "set the DNS zone the MIAC owns, e.g. miac77.ru")]
    if in_zone(zone, FALLBACK_ZONE):
        return [
            problem(
                "portal_domain_zone",
                value,
                f"8-FZ: the portal must live in a zone the MIAC owns, not under {FALLBACK_ZONE}",
            )
        ]
    return []


def names_in_zone_cross(settings: Mapping[str, Any]) -> list[str]:
    """The portal name and every alias lie inside the zone, below its apex, and are not the fallback."""
    zone = host_name(settings.get("portal_domain_zone"))
    if zone is None:
        return []
    fallback = host_name(settings.get("portal_domain_fallback"))
    found: list[str] = []
    entries: list[tuple[str, Any]] = []
    if "portal_domain_name" in settings:
        entries.append(("portal_domain_name", settings["portal_domain_name"]))
    for index, alias in enumerate(settings.get("portal_domain_aliases") or []):
        entries.append((f"portal_domain_aliases[{index}]", alias))
    main = host_name(settings.get("portal_domain_name"))
    for setting, value in entries:
        name = host_name(value)
        if name is None:
            continue
        if name == zone:
            found.append(
                problem(
                    setting,
                    value,
                    f"this is the apex of portal_domain_zone {zone!r}, whose records belong to the MIAC; "
                    f"use a name below it, e.g. zapis.{zone}",
                )
            )
        elif not in_zone(name, zone):
            found.append(
                problem(
                    setting,
                    value,
                    f"8-FZ: must be inside portal_domain_zone {zone!r} (e.g. zapis.{zone}), or fix the zone",
                )
            )
        if fallback and name == fallback:
            found.append(
                problem(setting, value, "must differ from portal_domain_fallback (the old name is never written)")
            )
        if setting != "portal_domain_name" and main and name == main:
            found.append(problem(setting, value, "is portal_domain_name already; list only extra names"))
    return found


def fallback_cross(settings: Mapping[str, Any]) -> list[str]:
    """The fallback is exactly <portal_region_code>.2dr.ru."""
    if "portal_domain_fallback" not in settings:
        return []
    value = settings["portal_domain_fallback"]
    if not region_code_valid(settings.get("portal_region_code")):
        label = (host_name(value) or "").removesuffix("." + FALLBACK_ZONE)
        if region_code_valid(label) and host_name(value) == f"{label}.{FALLBACK_ZONE}":
            return []
        return [problem("portal_domain_fallback", value, f"the old name is <region code>.{FALLBACK_ZONE}")]
    expected = f"{settings['portal_region_code']}.{FALLBACK_ZONE}"
    if host_name(value) != expected:
        return [
            problem("portal_domain_fallback", value, f"the old name is <region code>.{FALLBACK_ZONE}: set {expected!r}")
        ]
    return []


def national_tld_cross(settings: Mapping[str, Any]) -> list[str]:
    """With portal_domain_require_national_tld, the zone is under .ru, .рф or .su."""
    zone = host_name(settings.get("portal_domain_zone"))
    if zone is None or settings.get("portal_domain_require_national_tld") is not True:
        return []
    if zone.rsplit(".", 1)[-1] in NATIONAL_TLDS:
        return []
    return [
        problem(
            "portal_domain_zone",
            settings["portal_domain_zone"],
            "portal_domain_require_national_tld is true: use a zone under .ru, .рф or .su, "
            "or set portal_domain_require_national_tld: false",
        )
    ]


def key_name_valid(value: Any) -> bool:
    """A TSIG key name: a domain name of one or more labels (letters, digits, '_', '-')."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    name = value[:-1] if value.endswith(".") else value
    return bool(name) and all(_KEY_LABEL.fullmatch(label) for label in name.split("."))


def key_name_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    if key_name_valid(value):
        return []
    return [
        problem(
            "portal_domain_tsig_name",
            value,
            "set the name of the TSIG key the zone's update policy grants (letters, digits, '-', '_', dots), "
            "e.g. miac77-portal-update",
        )
    ]


def mnemonic_valid(value: Any) -> bool:
    """The IS mnemonic: 2-64 ASCII letters, digits, '_', '.', '-', starting with a letter or digit."""
    return isinstance(value, str) and _MNEMONIC.fullmatch(value) is not None


def mnemonic_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    if mnemonic_valid(value):
        return []
    return [
        problem(
            "esia_client_mnemonic",
            value,
            "set the IS mnemonic issued by the ESIA technology portal "
            "(2-64 letters, digits, '_', '-', '.', starting with a letter or digit), e.g. MIAC77PORTAL",
        )
    ]


def container_valid(value: Any) -> bool:
    """A key container name: 1-64 letters, digits, '_', '-', '.', not starting with '.' or '-'."""
    return isinstance(value, str) and _CONTAINER.fullmatch(value) is not None


def container_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    if container_valid(value):
        return []
    return [
        problem(
            "cryptopro_container",
            value,
            r"set a container name of 1-64 letters, digits, '_', '-', '.' not starting with '.' or '-' "
            r"(it becomes \\.\HDIMAGE\<name>), e.g. esia_77",
        )
    ]
