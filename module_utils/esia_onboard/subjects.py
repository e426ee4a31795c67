"""Certificate subjects: X.520 upper bounds, attribute types, and RFC 4514 escaping.

Roles that build a subject string call :func:`rdn_escape` (filter
``rdn_escape``) for every value they place in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem
from ansible.module_utils.esia_onboard.values import one_line

# Upper bounds (characters) of X.520 / RFC 5280 Appendix A (ub-common-name, ub-organization-name,
# ub-organizational-unit-name, ub-locality-name, ub-state-name, ub-emailaddress-length, ...);
# CAs and ESIA refuse longer values. The Russian attributes are fixed-length digit strings.
LIMITS = {"CN": 64, "O": 64, "OU": 64, "L": 128, "ST": 128, "STREET": 128, "C": 2, "E": 255, "T": 64, "SN": 64, "G": 64}
DIGITS = {"OGRN": 13, "INNLE": 10, "SNILS": 11, "INN": 12}
# Aliases of the same attribute (OpenSSL long names, CryptoPro names).
ALIASES = {
    "S": "ST",
    "EMAIL": "E",
    "EMAILADDRESS": "E",
    "COMMONNAME": "CN",
    "COUNTRYNAME": "C",
    "ORGANIZATIONNAME": "O",
    "ORGANIZATIONALUNITNAME": "OU",
    "LOCALITYNAME": "L",
    "STATEORPROVINCENAME": "ST",
    "STREETADDRESS": "STREET",
    "TITLE": "T",
    "SURNAME": "SN",
    "GIVENNAME": "G",
    "GN": "G",
}
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+", re.ASCII)


def canonical_type(kind: Any) -> str | None:
    """C, ST, L, STREET, O, OU, CN, E, T, SN, G, OGRN, INNLE, SNILS, INN, or a dotted OID; None if unknown."""
    if not isinstance(kind, str):
        return None
    if _OID.fullmatch(kind):
        return kind
    upper = kind.upper()
    upper = ALIASES.get(upper, upper)
    return upper if upper in LIMITS or upper in DIGITS else None


def value_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of attribute ``kind`` (None when it can)."""
    if isinstance(value, bool) or not isinstance(value, str):
        return "set the value as a quoted string"
    if not value.strip():
        return "set a value (empty attributes are left out instead)"
    if not one_line(value):
        return "write the value on one line, without control characters"
    if kind in DIGITS:
        if not re.fullmatch(f"[0-9]{{{DIGITS[kind]}}}", value, re.ASCII):
            return f"{kind} is exactly {DIGITS[kind]} digits"
        return None
    if kind == "C" and not re.fullmatch(r"[A-Z]{2}", value, re.ASCII):
        return "C is a two-letter country code such as RU"
    limit = LIMITS.get(kind)
    if limit is not None and len(value) > limit:
        return f"{kind} holds at most {limit} characters (X.520), this has {len(value)}; shorten it"
    return None


def cryptopro_subject_rule(value: list, settings: Mapping[str, Any], setting: str = "cryptopro_subject") -> list[str]:
    """A list of {type, value}; known types or dotted OIDs; values within X.520 bounds; a CN."""
    if not value:
        return [problem(setting, value, "list the subject's attributes as {type, value}, with at least a CN")]
    found: list[str] = []
    kinds = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"type", "value"}:
            found.append(problem(f"{setting}[{index}]", item, "each item is a mapping with exactly type and value"))
            continue
        kind = canonical_type(item["type"])
        if kind is None:
            found.append(
                problem(
                    f"{setting}[{index}].type",
                    item["type"],
                    "use C, ST, L, STREET, O, OU, CN, E, T, SN, G, OGRN, INNLE, SNILS, INN or a dotted OID",
                )
            )
            continue
        kinds.append(kind)
        reason = value_problem(kind, item["value"])
        if reason:
            found.append(problem(f"{setting}[{index}].value", item["value"], reason))
    if not found and "CN" not in kinds:
        found.append(problem(setting, f"{len(value)} items", "add a CN (the organisation's short name)"))
    return found


def csr_subject_rule(
    value: Mapping, settings: Mapping[str, Any], setting: str = "portal_https_csr_subject"
) -> list[str]:
    """portal_https_csr_subject: {attribute: value}; empty values are left out by the role."""
    found: list[str] = []
    for key, item in value.items():
        kind = canonical_type(key)
        if kind is None:
            found.append(
                problem(
                    f"{setting}.{key}",
                    item,
                    "use an attribute such as countryName, organizationName, organizationalUnitName",
                )
            )
            continue
        if item in ("", None):
            continue
        reason = value_problem(kind, item)
        if reason:
            found.append(problem(f"{setting}.{key}", item, reason))
    return found


def default_subject_cross(settings: Mapping[str, Any]) -> list[str]:
    """The roles' default subjects put portal_org.short_name in O and CN: it must fit 64 characters."""
    org = settings.get("portal_org")
    if not isinstance(org, Mapping) or not isinstance(org.get("short_name"), str):
        return []
    if "cryptopro_subject" in settings and "portal_https_csr_subject" in settings:
        return []
    reason = value_problem("CN", org["short_name"])
    if reason:
        return [problem("portal_org.short_name", org["short_name"], reason + " (it is the certificates' O and CN)")]
    return []


_RFC4514_SPECIAL = set('"+,;<>\\')


def rdn_escape(value: Any) -> str:
    """A value escaped for an RFC 4514 string (``CN=<this>``).

    ``\\`` before ``" + , ; < > \\``, before a leading ``#`` or space and a
    trailing space; NUL as ``\\00``.
    """
    text = str(value)
    out = []
    for index, char in enumerate(text):
        if char == "\x00":
            out.append("\\00")
        elif char in _RFC4514_SPECIAL or (index == 0 and char in "# ") or (index == len(text) - 1 and char == " "):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
