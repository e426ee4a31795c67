"""The organisation that operates the IS: OGRN, INN, contact, e-mail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem
from ansible.module_utils.esia_onboard.values import one_line

# local@domain: dot-atoms of RFC 5322 (no quoted local parts), a domain of 2+ labels.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]",
    re.ASCII,
)
_PHONE = re.compile(r"\+?[0-9 ()-]{10,24}", re.ASCII)


def ogrn_valid(value: Any) -> bool:
    """OGRN of a legal entity: 13 digits, first 1 or 5, last = (first 12 mod 11) mod 10."""
    return (
        isinstance(value, str)
        and re.fullmatch(r"[15][0-9]{12}", value, re.ASCII) is not None
        and int(value[:12]) % 11 % 10 == int(value[12])
    )


def inn_valid(value: Any) -> bool:
    """INN of a legal entity: 10 digits with the FNS check digit."""
    if not (isinstance(value, str) and re.fullmatch(r"[0-9]{10}", value, re.ASCII)):
        return False
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    return sum(int(d) * w for d, w in zip(value, weights, strict=False)) % 11 % 10 == int(value[9])


def email_valid(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 254 and _EMAIL.fullmatch(value) is not None


def email_rule(value: Any, settings: Mapping[str, Any], setting: str = "esia_client_application_email") -> list[str]:
    return [] if email_valid(value) else [problem(setting, value, "set an e-mail address such as esia@miac77.ru")]


def phone_valid(value: Any) -> bool:
    return isinstance(value, str) and _PHONE.fullmatch(value) is not None and len(re.sub(r"\D", "", value)) >= 10


def _text(setting: str, value: Any, fix: str, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, str) or not value.strip() or not one_line(value):
        return [problem(setting, value, fix + " (one line of text)")]
    return []


def org_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    """portal_org: name, short_name, ogrn, inn, optional type, contact {name, email, phone}."""
    if not isinstance(value, Mapping):
        return [
            problem(
                "portal_org",
                value,
                "set a mapping with name, short_name, ogrn, inn and contact (see inventories/region77)",
            )
        ]
    found = []
    found += _text("portal_org.name", value.get("name"), "set the organisation's full name as registered in EGRUL")
    found += _text("portal_org.short_name", value.get("short_name"), "set the organisation's short name from EGRUL")
    found += _text("portal_org.type", value.get("type"), "set the organisation type of the Appendix E form", False)
    if not ogrn_valid(value.get("ogrn")):
        found.append(
            problem(
                "portal_org.ogrn",
                value.get("ogrn"),
                "set the 13-digit OGRN from EGRUL as a quoted string; "
                "it starts with 1 or 5 and its check digit must match",
            )
        )
    if not inn_valid(value.get("inn")):
        found.append(
            problem(
                "portal_org.inn",
                value.get("inn"),
                "set the 10-digit INN of the organisation as a quoted string; its check digit must match",
            )
        )
    contact = value.get("contact")
    if not isinstance(contact, Mapping):
        found.append(
            problem(
                "portal_org.contact", contact, "set a mapping with name, email and phone of the responsible employee"
            )
        )
        return found
    found += _text("portal_org.contact.name", contact.get("name"), "set the responsible employee's full name")
    if not email_valid(contact.get("email")):
        found.append(
            problem("portal_org.contact.email", contact.get("email"), "set an e-mail address such as esia@miac77.ru")
        )
    if not phone_valid(contact.get("phone")):
        found.append(
            problem(
                "portal_org.contact.phone",
                contact.get("phone"),
                'set a phone number with its area code (digits, spaces, + ( ) -), e.g. "+7 (495) 000-00-00"',
            )
        )
    return found
