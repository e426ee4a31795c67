"""Filters `fqdn_valid`, `fqdn_in_zone` and `region_code_valid`: name checks for the 8-FZ domain move.

All three are predicates for `when:`/`that:`, so they return real booleans and
never raise: input of the wrong type is simply not valid. The rules are
module_utils/esia_onboard/names.py (`dns_name`, `in_zone`, `region_code_valid`);
validate.yml and the roles' entry checks use the stricter host-name rules there.
"""

from __future__ import annotations

from pathlib import Path

import ansible.module_utils

_MODULE_UTILS = str(Path(__file__).resolve().parents[1] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
from ansible.module_utils.esia_onboard import names  # noqa: E402


def fqdn_valid(name: object) -> bool:
    """True when `name` is a syntactically valid DNS name (IDN allowed, trailing dot optional)."""
    return names.dns_name(name) is not None


def fqdn_in_zone(name: object, zone: object) -> bool:
    """True when `name` is `zone` itself or a name below it (label-aligned, case-insensitive,
    trailing dots ignored, IDN compared in punycode). Invalid names or zones give False."""
    canonical_name, canonical_zone = names.dns_name(name), names.dns_name(zone)
    if canonical_name is None or canonical_zone is None:
        return False
    return names.in_zone(canonical_name, canonical_zone)


def region_code_valid(code: object) -> bool:
    """True for a string "01".."99" or a three-digit composite code "[1-9]" + "01".."99"."""
    return names.region_code_valid(code)


class FilterModule:
    def filters(self) -> dict:
        return {
            "fqdn_valid": fqdn_valid,
            "fqdn_in_zone": fqdn_in_zone,
            "region_code_valid": region_code_valid,
        }
