"""Filters `fqdn_valid`, `fqdn_in_zone` and `region_code_valid`: name checks for the 8-FZ domain move.

All three are predicates for `when:`/`that:`, so they return real booleans and
never raise: input of the wrong type is simply not valid.
"""

from __future__ import annotations

import re

# A subject code as used in the `<code>.2dr.ru` names: "01".."99", or a
# three-digit composite code of vehicle plates ("102", "116", "750", "799"),
# which is a leading digit 1-9 followed by a valid two-digit code.
_REGION_CODE = re.compile(r"(?:[1-9])?(?:0[1-9]|[1-9][0-9])", re.ASCII)
# One DNS label after IDNA encoding. Underscores are allowed because service
# names (_acme-challenge, _dmarc) live in the same zones.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)
_MAX_NAME_LENGTH = 253


def _canonical_name(value: object) -> str | None:
    """Lower-case, trailing-dot-free, IDNA (punycode) form of a DNS name; None if it is not one."""
    if not isinstance(value, str):
        return None
    name = value.rstrip(".").lower() if value != "." else ""
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not name or len(name) > _MAX_NAME_LENGTH:
        return None
    labels = name.split(".")
    # A leading "*" is a wildcard owner name, valid in a zone.
    checked = labels[1:] if labels[0] == "*" and len(labels) > 1 else labels
    if not all(_LABEL.fullmatch(label) for label in checked):
        return None
    return name


def fqdn_valid(name: object) -> bool:
    """True when `name` is a syntactically valid DNS name (IDN allowed, trailing dot optional)."""
    return _canonical_name(name) is not None


def fqdn_in_zone(name: object, zone: object) -> bool:
    """True when `name` is `zone` itself or a name below it (label-aligned, case-insensitive,
    trailing dots ignored, IDN compared in punycode). Invalid names or zones give False."""
    canonical_name = _canonical_name(name)
    canonical_zone = _canonical_name(zone)
    if canonical_name is None or canonical_zone is None:
        return False
    return canonical_name == canonical_zone or canonical_name.endswith("." + canonical_zone)


def region_code_valid(code: object) -> bool:
    """True for a string "01".."99" or a three-digit composite code "[1-9]" + "01".."99"."""
    return isinstance(code, str) and _REGION_CODE.fullmatch(code) is not None


class FilterModule:
    def filters(self) -> dict:
        return {
            "fqdn_valid": fqdn_valid,
            "fqdn_in_zone": fqdn_in_zone,
            "region_code_valid": region_code_valid,
        }
